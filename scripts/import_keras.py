"""`import_keras` entry point: register an existing .keras classifier as the FloriSense pyfunc."""

from __future__ import annotations

import argparse

from florisense_model.cli import run_cli
from florisense_model.config import RESIZE_MODES
from florisense_model.training.config import PROMOTE_CHOICES, recipe_defaults, whole_number
from florisense_model.training.import_keras import PIXEL_SCALINGS, import_keras


def main(argv: list[str] | None = None) -> None:
    defaults = recipe_defaults("import_keras")  # MLproject: the one place defaults are written
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keras-path", required=True, help="the .keras file to register")
    parser.add_argument(
        "--classes",
        default=defaults["classes"],
        help="output classes in index order (default: %(default)s)",
    )
    parser.add_argument(
        "--pixel-scaling",
        choices=sorted(PIXEL_SCALINGS),
        default=defaults["pixel_scaling"],
        help="pixel range the network was trained on (default: %(default)s)",
    )
    parser.add_argument("--resize-mode", choices=RESIZE_MODES, default=defaults["resize_mode"])
    parser.add_argument(
        "--data-dir",
        default=defaults["data_dir"],
        help="photos to evaluate it on (test split) before the promotion gate",
    )
    parser.add_argument("--promote", choices=PROMOTE_CHOICES, default=defaults["promote"])
    parser.add_argument("--seed", type=whole_number, default=defaults["seed"])
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
