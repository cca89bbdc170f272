"""Time a registered model in process (one image, a batch of 32) against the bare-network floor."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from florisense_model.benchmark import benchmark_http, benchmark_in_process
from scripts.classify import image_files
from scripts.cli import run_cli


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-uri", default="models:/florisense/Production")
    parser.add_argument("--images", nargs="+", required=True, help="image files or folders")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument(
        "--url",
        action="append",
        default=[],
        help="also time one-image requests to this URL (repeatable), "
        "e.g. http://127.0.0.1:8080/predict",
    )
    parser.add_argument("--json", default="", help="also write the figures to this file")
    args = parser.parse_args()
    files = image_files(args.images)
    result = benchmark_in_process(args.model_uri, files, args.repeats)
    image = next(f for f in files if f.name == result["image"]["file"])
    for url in args.url:
        result[f"http {url}"] = benchmark_http(url, image, args.repeats)
        ratio = result[f"http {url}"]["p50_ms"] / result["pyfunc_one_image"]["p50_ms"]
        result[f"http {url}"]["ratio_to_pyfunc_p50"] = round(ratio, 2)
    for key, value in result.items():
        if isinstance(value, dict) and "p50_ms" in value:
            print(
                f"{key:<20} p50 {value['p50_ms']:8.1f} ms   p95 {value['p95_ms']:8.1f} ms   "
                f"{value['images_per_s']:7.1f} images/s"
            )
    print(f"{'load':<20} {result['load_seconds']} s; image {result['image']}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    run_cli(main)
