"""Dataset scanning, validation, de-duplication, exclusions and the stratified split."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from florisense_model.training import data
from tests.support.images import encode, make_dataset, photo


def reasons(dataset: data.Dataset) -> dict[str, str]:
    return {d.path: d.reason for d in dataset.dropped}


def test_bad_files_are_dropped_with_a_reason(dataset_dir: Path):
    grass = dataset_dir / "grass"
    (grass / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (grass / "tiny.png").write_bytes(encode(photo((0, 200, 0), size=(20, 30)), "PNG"))
    (grass / "banner.jpg").write_bytes(encode(photo((0, 200, 0), size=(60, 400))))
    (grass / "copy.jpg").write_bytes((grass / "000.jpg").read_bytes())
    # Same picture, re-encoded smaller: a near duplicate, not an exact one.
    Image.open(grass / "001.jpg").resize((64, 48)).save(grass / "resaved.jpg", quality=70)
    (dataset_dir / "dandelion" / "stolen.jpg").write_bytes((grass / "002.jpg").read_bytes())
    (grass / ".DS_Store").write_bytes(b"junk")

    dataset = data.scan_dataset(dataset_dir, exclusions=None)
    why = reasons(dataset)
    assert why["grass/broken.jpg"].startswith("unreadable")
    assert why["grass/tiny.png"].startswith("too small: 30x20")
    assert why["grass/banner.jpg"].startswith("extreme aspect ratio 6.7:1")
    assert why["grass/copy.jpg"] == "exact duplicate of grass/000.jpg"
    assert why["grass/resaved.jpg"].startswith("near duplicate of grass/001.jpg")
    # Sorted scan sees dandelion/ first: the copy in grass/ is the one reported as a conflict.
    assert why["grass/002.jpg"].startswith("same image in classes dandelion and grass")
    assert ".DS_Store" not in str(why)
    assert Counter(s.label for s in dataset.samples) == {"dandelion": 21, "grass": 19}


def test_exclusion_list_matches_by_content_hash(dataset_dir: Path, tmp_path: Path):
    victim = dataset_dir / "dandelion" / "003.jpg"
    sha = hashlib.sha256(victim.read_bytes()).hexdigest()
    manifest = tmp_path / "bad.csv"
    manifest.write_text(f"# comment\nsha256,file,reason\n{sha},whatever/name.jpg,drawing\n")
    dataset = data.scan_dataset(dataset_dir, exclusions=manifest)
    assert reasons(dataset) == {"dandelion/003.jpg": "excluded: drawing (whatever/name.jpg)"}


def test_builtin_exclusions_parse_and_touch_nothing_else(dataset_dir: Path):
    builtin = data.load_exclusions(data.BUILTIN)
    assert len(builtin) == 60 and all(len(sha) == 64 for sha in builtin)
    categories = {reason.rsplit(" (", 1)[0] for reason in builtin.values()}
    assert categories == {
        "wrong label: not a dandelion",
        "wrong label: dandelions in the grass class",
        "drawing or clip-art (not a photo)",
        "text/cover/infographic or product",
        "not a photo of grass (game screenshot or tiled pattern)",
    }
    assert data.scan_dataset(dataset_dir).dropped == []


def test_missing_folder_or_classes_are_clear_errors(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="data directory not found"):
        data.scan_dataset(tmp_path / "nope")
    (tmp_path / "only_one").mkdir()
    with pytest.raises(ValueError, match="one sub-folder per class"):
        data.scan_dataset(tmp_path)


def test_split_is_stratified_seeded_and_disjoint(tmp_path: Path):
    dataset = data.scan_dataset(make_dataset(tmp_path / "p", per_class=40), exclusions=None)
    split = data.split_dataset(dataset, seed=7)
    counts = {name: Counter(s.label for s in part) for name, part in split.parts().items()}
    assert counts["train"] == {"dandelion": 28, "grass": 28}
    assert counts["val"] == {"dandelion": 6, "grass": 6}
    assert counts["test"] == {"dandelion": 6, "grass": 6}
    files = [s.path for part in split.parts().values() for s in part]
    assert len(files) == len(set(files)) == 80
    again = data.split_dataset(dataset, seed=7)
    assert [s.path for s in again.test] == [s.path for s in split.test]
    other = data.split_dataset(dataset, seed=8)
    assert [s.path for s in other.test] != [s.path for s in split.test]


def test_report_and_hash_describe_the_dataset(dataset_dir: Path):
    (dataset_dir / "grass" / "bad.jpg").write_bytes(b"nope")
    dataset = data.scan_dataset(dataset_dir, exclusions=None)
    split = data.split_dataset(dataset, seed=1)
    report = data.dataset_report(dataset, split, seed=1)
    assert report["kept"] == {"dandelion": 20, "grass": 20}
    assert report["dropped_count"] == 1 and report["dropped"][0]["path"] == "grass/bad.jpg"
    assert sum(sum(c.values()) for c in report["split_counts"].values()) == 40
    rows = data.split_rows(dataset, split)
    assert {r["file"] for r in rows["test"]} == {s.relative(dataset.root) for s in split.test}
    # The hash changes when a kept file's content changes, and only then.
    before = dataset.content_hash
    assert data.scan_dataset(dataset_dir, exclusions=None).content_hash == before
    (dataset_dir / "grass" / "005.jpg").write_bytes(encode(photo((10, 90, 10), seed=99)))
    assert data.scan_dataset(dataset_dir, exclusions=None).content_hash != before


def test_load_pixels_uses_the_serving_preprocessing(dataset_dir: Path):
    dataset = data.scan_dataset(dataset_dir, exclusions=None)
    images, labels = data.load_pixels(dataset.samples[:3], dataset.classes, 48, "crop")
    assert images.shape == (3, 48, 48, 3) and images.dtype == np.uint8
    assert labels.tolist() == [0, 0, 0]
