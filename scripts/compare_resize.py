"""Compare centre crop and letterbox on the validation split; prints and writes JSON."""

from __future__ import annotations

import argparse
import json
import os

from florisense_model.cli import run_cli
from florisense_model.training.resize_study import compare_resize_modes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", default=os.environ.get("FLORISENSE_DATA_DIR", ""))
    parser.add_argument(
        "--base-weights", default=os.environ.get("FLORISENSE_BASE_WEIGHTS", "imagenet")
    )
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--seeds", default="42,7,123", help="comma-separated split seeds")
    parser.add_argument("--json", default="", help="write the results to this file")
    args = parser.parse_args()
    results = [
        compare_resize_modes(args.data_dir, args.base_weights, args.image_size, int(s))
        for s in args.seeds.split(",")
    ]
    for r in results:
        print(
            f"seed {r['seed']}: "
            + "  ".join(
                f"{m}: acc {r[m]['val_accuracy']:.3f} loss {r[m]['val_log_loss']:.3f}"
                for m in ("crop", "letterbox")
            )
        )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    run_cli(main)
