"""Classify photos through the running stack: POST them to /predict in batches and print a table
(file, label, confidence) or JSON. With --explain DIR, also write each photo with its heat map
drawn over it (where the model sees the dandelion) into DIR."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from PIL import Image

from florisense_model.cli import run_cli
from florisense_model.client import DEFAULT_URL, PredictError, predict_files
from florisense_model.overlay import overlay
from florisense_model.photos import image_files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("images", nargs="+", help="image files or folders")
    parser.add_argument("--url", default=DEFAULT_URL, help="default: %(default)s")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--batch-size", type=int, default=16, help="images per request")
    parser.add_argument("--per-folder", type=int, default=None, help="at most N photos a folder")
    parser.add_argument(
        "--explain",
        metavar="DIR",
        type=Path,
        help="ask for heat maps and write each photo with its map over it into DIR",
    )
    args = parser.parse_args()
    files = image_files(args.images, args.per_folder)
    if not files:
        raise ValueError("no image files found")
    if args.explain:
        args.explain.mkdir(parents=True, exist_ok=True)
    try:
        rows = [
            {"file": str(path), **prediction}
            for path, prediction in predict_files(
                args.url, files, args.batch_size, explain=bool(args.explain)
            )
        ]
    except PredictError as exc:
        print(f"florisense: error: {exc}", file=sys.stderr)
        sys.exit(1)
    if args.explain:
        write_overlays(rows, args.explain)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    width = max(len(row["file"]) for row in rows)
    print(f"{'file':<{width}}  {'label':<10} confidence")
    for row in rows:
        if row["error"]:
            print(f"{row['file']:<{width}}  {'-':<10} error: {row['error']}")
        else:
            overlay_file = f"  {row['overlay']}" if row.get("overlay") else ""
            print(
                f"{row['file']:<{width}}  {row['label']:<10} {row['confidence']:.3f}{overlay_file}"
            )


def write_overlays(rows: list[dict[str, Any]], folder: Path) -> None:
    """Each answered photo with its heat map over it, as DIR/<n>-<name>.png (numbered: two
    folders may hold photos of the same name); the path goes into the row as `overlay`."""
    if not any("heatmap" in row for row in rows):
        print(
            "florisense: the served model version answered without heat maps (registered before "
            "them): no overlay written",
            file=sys.stderr,
        )
    for number, row in enumerate(rows, start=1):
        heatmap = row.get("heatmap")
        if heatmap is None:
            continue
        path = Path(row["file"])
        target = folder / f"{number:04d}-{path.stem}.png"
        with Image.open(path) as photo:
            overlay(photo, heatmap).save(target)
        row["overlay"] = str(target)


if __name__ == "__main__":
    run_cli(main)
