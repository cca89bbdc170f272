"""`import_keras` entry point: register an existing .keras classifier as the FloriSense pyfunc."""

from __future__ import annotations

import argparse

from florisense_model.config import CLASSES, DEFAULT_RESIZE_MODE, RESIZE_MODES
from florisense_model.importing import PIXEL_SCALINGS, import_keras
from florisense_model.registry import PROMOTE_CHOICES
from scripts.cli import run_cli


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keras-path", required=True, help="the .keras file to register")
    parser.add_argument(
        "--classes",
        default=",".join(CLASSES),
        help="output classes in index order (default: %(default)s)",
    )
    parser.add_argument(
        "--pixel-scaling",
        choices=sorted(PIXEL_SCALINGS),
        default="mobilenet",
        help="pixel range the network was trained on (default: %(default)s)",
    )
    parser.add_argument("--resize-mode", choices=RESIZE_MODES, default=DEFAULT_RESIZE_MODE)
    parser.add_argument(
        "--data-dir",
        default="",
        help="photos to evaluate it on (test split) before the promotion gate",
    )
    parser.add_argument("--promote", choices=PROMOTE_CHOICES, default="auto")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    import_keras(
        args.keras_path,
        tuple(c.strip() for c in args.classes.split(",")),
        args.pixel_scaling,
        args.resize_mode,
        args.data_dir,
        args.promote,
        args.seed,
    )


if __name__ == "__main__":
    run_cli(main)
