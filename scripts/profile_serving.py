"""Where the serving time goes: every stage of one /invocations request in process (JSON,
DataFrame, schema, base64, decode, resize, forward, output), for one image and for a batch; then,
optionally, `mlflow models serve` started once per setting (uvicorn workers, TensorFlow threads)
and loaded directly. Prints tables, writes JSON. Talks only to 127.0.0.1."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from florisense_model.cli import run_cli
from florisense_model.perf.profiling import (
    SERVER_SETTINGS,
    compare_server_settings,
    profile_request,
)
from florisense_model.photos import image_files
from florisense_model.stack.settings import free_port


def print_stages(one: dict, batch: dict) -> None:
    print(f"{'stage (p50 ms)':<28}{'1 image':>10}{'%':>6}{batch['images']:>7} images{'%':>6}")
    for stage, ms in one["stages_p50_ms"].items():
        batch_ms = batch["stages_p50_ms"][stage]
        print(
            f"{stage:<28}{ms:>10.2f}{100 * ms / one['sum_of_stages_ms']:>6.1f}"
            f"{batch_ms:>14.2f}{100 * batch_ms / batch['sum_of_stages_ms']:>6.1f}"
        )
    for key in ("sum_of_stages_ms", "invocations_in_process_ms"):
        print(f"{key:<28}{one[key]:>10.2f}{'':>6}{batch[key]:>14.2f}")


def print_settings(results: dict) -> None:
    print(
        f"\n{'server setting':<32}{'c1 p50':>8}{'c4 req/s':>10}{'c8 req/s':>10}"
        f"{'c8 p99':>8}{'b32 img/s':>11}{'RSS MB':>8}{'errors':>8}"
    )
    for name, r in results.items():
        if "error" in r:
            print(f"{name:<32}{r['error']}")
            continue
        errors = sum(sum(r[k]["unexpected"].values()) for k in ("c1", "c4", "c8", "batch32_c1"))
        print(
            f"{name:<32}{r['c1']['p50_ms']:>8.1f}{r['c4']['requests_per_s']:>10.1f}"
            f"{r['c8']['requests_per_s']:>10.1f}{r['c8']['p99_ms']:>8.1f}"
            f"{r['batch32_c1']['images_per_s']:>11.1f}{r['rss_mb']:>8.0f}{errors:>8}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", required=True, nargs="+", help="photo files or folders")
    parser.add_argument("--model-uri", default="models:/florisense/Production")
    parser.add_argument("--repeats", type=int, default=20, help="in-process repetitions")
    parser.add_argument(
        "--settings",
        nargs="*",
        default=None,
        choices=sorted(SERVER_SETTINGS),
        help="server settings to compare (default: all; none given: skip the comparison)",
    )
    parser.add_argument("--requests", type=int, default=20, help="requests per load worker")
    parser.add_argument("--json", default="", help="write every figure to this file")
    args = parser.parse_args()
    files = image_files(args.images)
    one = max(files, key=lambda p: p.stat().st_size)
    batch = [files[i % len(files)].read_bytes() for i in range(32)]
    result = {
        "one_image": profile_request(args.model_uri, [one.read_bytes()], args.repeats),
        "batch_32": profile_request(args.model_uri, batch, max(3, args.repeats // 4)),
    }
    print_stages(result["one_image"], result["batch_32"])
    chosen = SERVER_SETTINGS if args.settings is None else args.settings
    if chosen:
        tracking_uri = os.environ.get("MLFLOW_TRACKING_URI", "")
        if not tracking_uri.startswith("http"):
            raise ValueError("set MLFLOW_TRACKING_URI to the tracking server to compare settings")
        result["server_settings"] = compare_server_settings(
            tracking_uri,
            one.read_bytes(),
            batch,
            {name: SERVER_SETTINGS[name] for name in chosen},
            free_port(),
            args.requests,
        )
        print_settings(result["server_settings"])
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    run_cli(main)
