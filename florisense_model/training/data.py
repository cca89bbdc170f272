"""Dataset: scan <data_dir>/<class>/, validate each photo, drop bad ones with a reason, and make
a seeded stratified train/val/test split with a report that makes the run reproducible."""

from __future__ import annotations

import csv
import hashlib
import io
from collections import Counter
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

import imagehash
import numpy as np
from sklearn.model_selection import train_test_split

from florisense_model.model.preprocessing import ImageError, open_image, preprocess_image, to_rgb
from florisense_model.photos import class_folders

MIN_TRAIN_SIDE = 48
MAX_ASPECT_RATIO = 3.0
# pHash Hamming distance (of 64 bits) at or under which two photos count as the same picture
# re-encoded, resized or lightly edited (measured: 2-8). The closest two distinct photos of the
# dandelion-grass set are 14 apart.
NEAR_DUPLICATE_DISTANCE = 8
# A CSV source naming the file shipped in this package (csv_rows).
BUILTIN = "builtin"


@dataclass(frozen=True)
class Sample:
    path: Path
    label: str
    sha256: str

    def relative(self, root: Path) -> str:
        return self.path.relative_to(root).as_posix()


@dataclass
class Dropped:
    path: str
    label: str
    reason: str


@dataclass
class Dataset:
    root: Path
    classes: tuple[str, ...]
    samples: list[Sample]
    dropped: list[Dropped] = field(default_factory=list)

    @property
    def content_hash(self) -> str:
        """sha256 over the kept files' (relative path, label, content hash), in sorted order."""
        digest = hashlib.sha256()
        for sample in sorted(self.samples, key=lambda s: s.relative(self.root)):
            digest.update(
                f"{sample.relative(self.root)}\t{sample.label}\t{sample.sha256}\n".encode()
            )
        return digest.hexdigest()


@dataclass
class Split:
    train: list[Sample]
    val: list[Sample]
    test: list[Sample]

    def parts(self) -> dict[str, list[Sample]]:
        return {"train": self.train, "val": self.val, "test": self.test}


def scan_dataset(
    data_dir: str | Path,
    classes: tuple[str, ...] | None = None,
    exclusions: str | Path | None = BUILTIN,
) -> Dataset:
    """Read every file under data_dir/<class>/ and keep only valid, unique, non-excluded photos."""
    root = Path(data_dir).expanduser().resolve()
    files_by_class = class_folders(root)
    found = list(files_by_class)
    classes = tuple(classes or found)
    missing = [c for c in classes if c not in found]
    if missing or len(classes) < 2:
        raise ValueError(
            f"{root} must hold one sub-folder per class {list(classes)}; found {found}"
        )
    excluded = load_exclusions(exclusions)
    dataset = Dataset(root=root, classes=classes, samples=[])
    hashes: list[tuple[Sample, imagehash.ImageHash]] = []
    by_sha: dict[str, Sample] = {}
    for label in classes:
        for path in files_by_class[label]:
            rel = path.relative_to(root).as_posix()
            data = path.read_bytes()
            sha = hashlib.sha256(data).hexdigest()
            reason, phash = _check_image(data)
            if reason is None and sha in excluded:
                reason = f"excluded: {excluded[sha]}"
            if reason is None and sha in by_sha:
                twin = by_sha[sha]
                reason = f"exact duplicate of {twin.relative(root)}"
                if twin.label != label:
                    reason = (
                        f"same image in classes {twin.label} and {label}: {twin.relative(root)}"
                    )
            if reason is None:
                twin_hash = _nearest(phash, hashes)
                if twin_hash is not None:
                    twin, distance = twin_hash
                    reason = f"near duplicate of {twin.relative(root)} (pHash distance {distance})"
            if reason is not None:
                dataset.dropped.append(Dropped(rel, label, reason))
                continue
            sample = Sample(path=path, label=label, sha256=sha)
            by_sha[sha] = sample
            hashes.append((sample, phash))
            dataset.samples.append(sample)
    if not dataset.samples:
        raise ValueError(f"no usable images under {root}")
    return dataset


def photo_problem(data: bytes) -> str | None:
    """Why `data` cannot be a training photo (the model's own checks, then training's), or None:
    what `florisense data add` applies before a photo enters the dataset."""
    return _check_image(data)[0]


def _check_image(data: bytes) -> tuple[str | None, imagehash.ImageHash | None]:
    """(reason to drop or None, perceptual hash of a valid image)."""
    try:
        image = to_rgb(open_image(data))
    except ImageError as exc:
        return f"unreadable: {exc}", None
    width, height = image.size
    if min(width, height) < MIN_TRAIN_SIDE:
        return f"too small: {width}x{height} (min {MIN_TRAIN_SIDE} px a side)", None
    ratio = max(width, height) / min(width, height)
    if ratio > MAX_ASPECT_RATIO:
        return f"extreme aspect ratio {ratio:.1f}:1 (max {MAX_ASPECT_RATIO:g}:1)", None
    return None, imagehash.phash(image)


def _nearest(
    phash: imagehash.ImageHash, seen: list[tuple[Sample, imagehash.ImageHash]]
) -> tuple[Sample, int] | None:
    best: tuple[Sample, int] | None = None
    for sample, other in seen:
        distance = phash - other
        if distance <= NEAR_DUPLICATE_DISTANCE and (best is None or distance < best[1]):
            best = (sample, distance)
    return best


def load_exclusions(source: str | Path | None) -> dict[str, str]:
    """sha256 -> reason, from a CSV with columns sha256,file,reason.

    "builtin" is the curated list for the dandelion-grass photos (drawings, mislabels and
    non-photos listed in their SOURCE.md); matching by content hash means it can never drop a
    different photo that happens to share a file name. None or "none" excludes nothing.
    """
    if source is None or str(source).strip().lower() in ("", "none"):
        return {}
    rows = csv_rows(source, builtin="known_bad/dandelion-grass.csv")
    return {
        row["sha256"].strip(): f"{row['reason'].strip()} ({row['file'].strip()})" for row in rows
    }


def csv_rows(source: str | Path, builtin: str) -> list[dict[str, str]]:
    """The rows of the CSV file `source`, or, for "builtin", of the file `builtin` shipped in
    this package (the lists curated for the dandelion-grass photos); `#` lines are comments."""
    if str(source) == BUILTIN:
        packaged = resources.files("florisense_model.training").joinpath(builtin)
        content = packaged.read_text(encoding="utf-8")
    else:
        content = Path(source).expanduser().read_text(encoding="utf-8")
    return list(csv.DictReader(line for line in io.StringIO(content) if not line.startswith("#")))


def split_dataset(
    dataset: Dataset, seed: int, val_fraction: float = 0.15, test_fraction: float = 0.15
) -> Split:
    """A seeded split, stratified by class; the same files and seed always give the same split."""
    samples = sorted(dataset.samples, key=lambda s: s.relative(dataset.root))
    labels = [s.label for s in samples]
    counts = Counter(labels)
    if min(counts.values()) < 3:
        raise ValueError(f"each class needs at least 3 images to split; got {dict(counts)}")
    rest, test = train_test_split(
        samples, test_size=test_fraction, stratify=labels, random_state=seed
    )
    rest_labels = [s.label for s in rest]
    train, val = train_test_split(
        rest,
        test_size=val_fraction / (1.0 - test_fraction),
        stratify=rest_labels,
        random_state=seed,
    )
    return Split(train=train, val=val, test=test)


def dataset_report(dataset: Dataset, split: Split, seed: int) -> dict:
    """Counts per class and split, dropped files with reasons, and the content hash."""
    return {
        "data_dir": str(dataset.root),
        "classes": list(dataset.classes),
        "content_sha256": dataset.content_hash,
        "seed": seed,
        "kept": dict(Counter(s.label for s in dataset.samples)),
        "split_counts": {
            name: dict(Counter(s.label for s in part)) for name, part in split.parts().items()
        },
        "dropped_count": len(dataset.dropped),
        "dropped": [asdict(d) for d in dataset.dropped],
    }


def split_rows(dataset: Dataset, split: Split) -> dict[str, list[dict[str, str]]]:
    """File lists per split (relative path, label, sha256): logged so a run can be audited."""
    return {
        name: [
            {"file": s.relative(dataset.root), "label": s.label, "sha256": s.sha256} for s in part
        ]
        for name, part in split.parts().items()
    }


def load_pixels(
    samples: list[Sample], classes: tuple[str, ...], size: int, mode: str
) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 images, class indices), through the ONE preprocessing function used by serving."""
    images = np.stack([preprocess_image(s.path.read_bytes(), size, mode) for s in samples])
    labels = np.array([classes.index(s.label) for s in samples], dtype=np.int64)
    return images, labels
