"""A SYNTHETIC lawn benchmark (issue 22): flower-free grass photos, each enlarged to a phone-like
1,000 px, with real dandelion flower heads (cut from other photos along their drawn boxes, with a
soft elliptical edge) pasted in at each of six widths from 2% to 15% of the lawn's, one to five
a lawn; and every lawn once more with none. No public set of real lawn photos with small
dandelions is on these machines: this one is built, and says so in its name, files and report.

Only photos of a run's test split are used (backgrounds and flowers alike), so a model trained
on the rest never saw them. The same photos and seed always give the same lawns.

    python -m florisense_model.perf.lawns PHOTOS TEST_SPLIT_CSV OUT [--seed 0]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from florisense_model.training.data import BUILTIN, load_exclusions
from florisense_model.training.explanations import load_boxes

Box = tuple[int, int, int, int]
LAWN_WIDTH = 1000
# The flower widths, as fractions of the lawn's width: the 2% to 15%.
WIDTH_FRACTIONS = (0.02, 0.03, 0.04, 0.06, 0.10, 0.15)
MAX_FLOWERS = 5
FEATHER = 0.3  # the outer part of a flower's radius over which it fades into the lawn
# A flower goes only where the lawn is green (not on a sky or a studio backdrop, which some
# stock grass photos have), and a photo with little green is not used as a lawn.
GREEN_SPOT = 0.7
GREEN_LAWN = 0.4
NAME = "synthetic-lawns"


@dataclass(frozen=True)
class Lawn:
    name: str
    background_sha256: str
    width_fraction: float | None  # None: the lawn without flowers
    boxes: tuple[Box, ...]  # the pasted flowers, in the lawn's own pixels
    donor_sha256: tuple[str, ...]


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cut_flower(photo: Image.Image, box: Sequence[float], feather: float = FEATHER) -> Image.Image:
    """The flower inside `box` as RGBA, opaque at its centre and fading to transparent at the
    box's inscribed ellipse, so no rectangle edge of the donor photo shows on the lawn."""
    left, top, right, bottom = (round(v) for v in box)
    crop = photo.convert("RGB").crop((left, top, right, bottom))
    width, height = crop.size
    ys, xs = np.mgrid[0:height, 0:width]
    radius = np.hypot((xs + 0.5) / width * 2 - 1, (ys + 0.5) / height * 2 - 1)
    alpha = np.clip((1.0 - radius) / feather, 0.0, 1.0)
    flower = crop.convert("RGBA")
    flower.putalpha(Image.fromarray((alpha * 255).round().astype(np.uint8)))
    return flower


def enlarge(photo: Image.Image, width: int = LAWN_WIDTH) -> Image.Image:
    """A grass photo at `width` pixels, its aspect kept (the dataset's are 200 to 500 px wide)."""
    height = round(photo.height * width / photo.width)
    return photo.convert("RGB").resize((width, height), Image.Resampling.LANCZOS)


def green_mask(image: Image.Image) -> np.ndarray:
    """Where the photo is grass-coloured: green above red and blue."""
    pixels = np.asarray(image.convert("RGB"), dtype=np.int16)
    red, green, blue = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    return (green > red + 8) & (green > blue + 8)


def free_spot(
    size: tuple[int, int], green: np.ndarray, taken: list[Box], rng: np.random.Generator
) -> Box | None:
    """A place for a flower of `size` on green lawn that overlaps none already placed (counts
    stay countable); None after 300 tries."""
    width, height = size
    lawn_height, lawn_width = green.shape
    for _ in range(300):
        left = int(rng.integers(0, lawn_width - width + 1))
        top = int(rng.integers(0, lawn_height - height + 1))
        box = (left, top, left + width, top + height)
        apart = all(
            box[2] <= o[0] or o[2] <= box[0] or box[3] <= o[1] or o[3] <= box[1] for o in taken
        )
        if apart and green[top : top + height, left : left + width].mean() >= GREEN_SPOT:
            return box
    return None


def paste_flowers(
    lawn: Image.Image, flowers: Sequence[Image.Image], width_fraction: float, rng
) -> tuple[Image.Image, list[Box]]:
    """`lawn` with each flower scaled to `width_fraction` of its width, at free places."""
    result = lawn.copy()
    green = green_mask(lawn)
    boxes: list[Box] = []
    for flower in flowers:
        width = max(4, round(width_fraction * lawn.width))
        height = max(4, round(flower.height * width / flower.width))
        spot = free_spot((width, height), green, boxes, rng)
        if spot is None:
            continue
        scaled = flower.resize((width, height), Image.Resampling.LANCZOS)
        result.paste(scaled, spot[:2], scaled)
        boxes.append(spot)
    return result, boxes


def build(
    backgrounds: Sequence[Path],
    donors: Sequence[tuple[Path, Sequence[Box]]],
    out: Path,
    seed: int,
    widths: Sequence[float] = WIDTH_FRACTIONS,
) -> list[Lawn]:
    """Write each background once without flowers and once per width with 1 to 5 flowers of
    that width, as JPEG under `out`, with lawns.json describing every file."""
    rng = np.random.default_rng(seed)
    flowers = [
        (sha256_of(path), cut_flower(Image.open(path), box))
        for path, boxes in donors
        for box in boxes
        if box[2] - box[0] >= 12 and box[3] - box[1] >= 12  # too small to cut a flower from
    ]
    if not flowers or not backgrounds:
        raise ValueError("the lawn benchmark needs grass photos and boxed dandelion photos")
    out.mkdir(parents=True, exist_ok=True)
    lawns: list[Lawn] = []
    usable = [path for path in backgrounds if green_mask(Image.open(path)).mean() >= GREEN_LAWN]
    for index, path in enumerate(usable):
        background = enlarge(Image.open(path))
        background_sha = sha256_of(path)
        empty = f"{NAME}-{index:03d}-empty.jpg"
        background.save(out / empty, quality=92)
        lawns.append(Lawn(empty, background_sha, None, (), ()))
        for fraction in widths:  # every width on every lawn: recall by width, same lawns
            count = int(rng.integers(1, MAX_FLOWERS + 1))
            # Different flowers in a lawn while there are enough of them.
            drawn = rng.choice(len(flowers), size=count, replace=len(flowers) < count)
            picked = [flowers[i] for i in drawn]
            image, boxes = paste_flowers(background, [f for _, f in picked], fraction, rng)
            name = f"{NAME}-{index:03d}-{round(fraction * 100)}pct-{len(boxes)}.jpg"
            image.save(out / name, quality=92)
            donor_shas = tuple(sha for sha, _ in picked[: len(boxes)])
            lawns.append(Lawn(name, background_sha, fraction, tuple(boxes), donor_shas))
    description = {
        "name": NAME,
        "synthetic": True,
        "construction": __doc__.split("\n\n")[0].replace("\n", " "),
        "seed": seed,
        "lawns": [asdict(lawn) for lawn in lawns],
    }
    (out / "lawns.json").write_text(json.dumps(description, indent=1) + "\n")
    return lawns


def test_split_sources(
    photos: Path, test_csv: Path, boxes: str | Path = "builtin"
) -> tuple[list[Path], list[tuple[Path, list]]]:
    """The grass photos and the boxed dandelion photos (`boxes`: a CSV as load_boxes reads, or
    the ones drawn for the dandelion-grass photos) of a run's test split (its dataset/test.csv
    artifact: file, label, sha256), found under `photos` by content hash."""
    with test_csv.open(newline="") as handle:
        test = {row["sha256"]: row["label"] for row in csv.DictReader(handle)}
    bad = load_exclusions(BUILTIN)  # drawings, mislabels: the dandelion-grass SOURCE.md list
    grass = [
        path
        for path in sorted((photos / "grass").iterdir())
        if path.is_file() and test.get(sha := sha256_of(path)) == "grass" and sha not in bad
    ]
    donors = [
        (boxed.path, boxed.boxes)
        for boxed in load_boxes(photos, boxes)
        if test.get(sha256_of(boxed.path)) == "dandelion"
    ]
    return grass, donors


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photos", type=Path, help="the labelled photos (dandelion/, grass/)")
    parser.add_argument("test_csv", type=Path, help="a run's dataset/test.csv artifact")
    parser.add_argument("out", type=Path, help="where the lawns and lawns.json go")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--boxes", default="builtin", help="flower boxes CSV (default: builtin)")
    args = parser.parse_args(argv)
    grass, donors = test_split_sources(args.photos, args.test_csv, args.boxes)
    lawns = build(grass, donors, args.out, args.seed)
    flowered = [lawn for lawn in lawns if lawn.width_fraction is not None]
    print(
        f"{len(lawns)} SYNTHETIC lawns in {args.out}: {len(lawns) - len(flowered)} without "
        f"flowers, {len(flowered)} with {sum(len(lawn.boxes) for lawn in flowered)} flowers "
        f"from {len(donors)} test-split dandelion photos on {len(grass)} test-split grass photos"
    )


if __name__ == "__main__":
    main()
