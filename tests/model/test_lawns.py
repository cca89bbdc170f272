"""The synthetic lawn benchmark's construction (perf/lawns.py), on generated photos: flowers
pasted where lawns.json says, at the width it says, with soft edges, never overlapping; the
same inputs and seed give the same files; only the test split's photos are used."""

from __future__ import annotations

import csv
import hashlib
import json

import numpy as np
from PIL import Image

from florisense_model.perf import lawns

GRASS = (40, 140, 50)
YELLOW = (250, 215, 20)


def write_photo(path, size=(275, 183), colour=GRASS, flower_box=None) -> None:
    image = Image.new("RGB", size, colour)
    if flower_box:
        image.paste(Image.new("RGB", (flower_box[2] - flower_box[0],) * 2, YELLOW), flower_box[:2])
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG")


def sources(tmp_path, grass=6, dandelions=4):
    backgrounds = [tmp_path / "photos" / "grass" / f"g{i}.png" for i in range(grass)]
    for index, path in enumerate(backgrounds):
        write_photo(path, colour=(40, 140 + index, 50))  # distinct bytes, distinct hashes
    box = (60, 40, 120, 100)
    donors = []
    for index in range(dandelions):
        path = tmp_path / "photos" / "dandelion" / f"d{index}.png"
        write_photo(path, colour=(30 + index, 90, 30), flower_box=box)
        donors.append((path, [box]))
    return backgrounds, donors


def test_every_flower_is_where_lawns_json_says_at_its_width_with_a_soft_edge(tmp_path):
    backgrounds, donors = sources(tmp_path)
    built = lawns.build(backgrounds, donors, tmp_path / "out", seed=3)
    description = json.loads((tmp_path / "out" / "lawns.json").read_text())
    assert description["synthetic"] is True and description["name"] == "synthetic-lawns"
    assert len(built) == (1 + len(lawns.WIDTH_FRACTIONS)) * len(backgrounds)
    widths = [lawn.width_fraction for lawn in built if lawn.width_fraction]
    assert sorted(set(widths)) == sorted(lawns.WIDTH_FRACTIONS)
    assert sum(1 for lawn in built if lawn.width_fraction is None) == len(backgrounds)
    for lawn in built:
        image = np.asarray(Image.open(tmp_path / "out" / lawn.name).convert("RGB"), dtype=float)
        assert image.shape[1] == lawns.LAWN_WIDTH
        yellow = (image[..., 0] > 180) & (image[..., 2] < 120)
        if lawn.width_fraction is None:
            assert not yellow.any() and lawn.boxes == ()
            continue
        assert 1 <= len(lawn.boxes) <= lawns.MAX_FLOWERS
        assert len(lawn.donor_sha256) == len(lawn.boxes)
        for left, top, right, bottom in lawn.boxes:
            assert right - left == round(lawn.width_fraction * lawns.LAWN_WIDTH)
            assert yellow[(top + bottom) // 2, (left + right) // 2]  # the flower's centre
            assert not yellow[top, left]  # its box's corner is lawn: the edge fades out
        inside = np.zeros_like(yellow)
        for left, top, right, bottom in lawn.boxes:
            assert not inside[top:bottom, left:right].any()  # no two flowers overlap
            inside[top:bottom, left:right] = True
        assert not (yellow & ~inside).any()  # no flower outside its box


def test_the_same_photos_and_seed_give_the_same_lawns(tmp_path):
    backgrounds, donors = sources(tmp_path)
    first = lawns.build(backgrounds, donors, tmp_path / "a", seed=7)
    again = lawns.build(backgrounds, donors, tmp_path / "b", seed=7)
    other = lawns.build(backgrounds, donors, tmp_path / "c", seed=8)
    assert first == again
    for name in [lawn.name for lawn in first] + ["lawns.json"]:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert [lawn.boxes for lawn in other] != [lawn.boxes for lawn in first]


def test_only_the_test_splits_photos_are_used(tmp_path):
    backgrounds, donors = sources(tmp_path)

    def sha(path) -> str:
        return hashlib.sha256(path.read_bytes()).hexdigest()

    test_csv = tmp_path / "test.csv"
    chosen_grass, chosen_donor = backgrounds[:2], donors[1][0]
    with test_csv.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "label", "sha256"])
        writer.writerows(["x", "grass", sha(path)] for path in chosen_grass)
        writer.writerow(["y", "dandelion", sha(chosen_donor)])
        writer.writerow(["z", "dandelion", sha(backgrounds[3])])  # a label that does not fit
    boxes = tmp_path / "boxes.csv"
    with boxes.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sha256", "file", "left", "top", "right", "bottom"])
        for path, (box,) in donors:
            writer.writerow([sha(path), f"dandelion/{path.name}", *box])
    grass, found = lawns.test_split_sources(tmp_path / "photos", test_csv, boxes)
    assert grass == chosen_grass
    assert [path for path, _ in found] == [chosen_donor]


def test_flowers_go_only_on_green_lawn_and_a_photo_without_lawn_is_not_used(tmp_path):
    _, donors = sources(tmp_path, grass=0)
    half = tmp_path / "half.png"
    image = Image.new("RGB", (275, 183), GRASS)
    image.paste(Image.new("RGB", (275, 90), (250, 250, 250)), (0, 0))  # a white sky
    image.save(half)
    studio = tmp_path / "studio.png"
    Image.new("RGB", (275, 183), (250, 250, 250)).save(studio)
    built = lawns.build([half, studio] * 3, donors, tmp_path / "out", seed=1)
    assert {lawn.background_sha256 for lawn in built} == {lawns.sha256_of(half)}
    sky = round(90 * lawns.LAWN_WIDTH / 275)
    for lawn in built:
        for _, top, _, bottom in lawn.boxes:
            assert top >= sky - 0.3 * (bottom - top), (lawn.name, top)  # mostly on the grass


def test_the_score_counts_recall_by_width_false_positives_and_counts():
    from florisense_model.perf.lawn_score import score

    described = [
        {"width_fraction": None, "boxes": []},
        {"width_fraction": None, "boxes": []},
        {"width_fraction": 0.02, "boxes": [[0, 0, 20, 20]] * 3},
        {"width_fraction": 0.02, "boxes": [[0, 0, 20, 20]]},
        {"width_fraction": 0.15, "boxes": [[0, 0, 150, 150]] * 2},
    ]
    rows = [
        {"label": "grass", "dandelions": []},
        {"label": "dandelion", "dandelions": [{}]},
        {"label": "dandelion", "dandelions": [{}, {}]},
        {"label": "grass", "dandelions": []},
        {"label": "dandelion", "dandelions": [{}] * 5},
    ]
    figures = score(described, rows)
    assert figures["recall_by_width"] == {"0.02": 0.5, "0.15": 1.0}
    assert figures["recall_at_most_4pct"] == 0.5
    assert figures["false_positive_rate"] == 0.5
    assert figures["count_within_one"] == 0.8  # 3 vs 5 is the one miss
    # A version without the close look answers no dandelions: no count figure.
    assert score(described, [{"label": "grass"}] * 5)["count_within_one"] is None
