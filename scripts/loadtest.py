"""Load test /predict: mixed valid and invalid requests at bounded concurrency for a bounded time,
127.0.0.1 only. Prints throughput, p50/p95/p99 and every unexpected answer by kind; writes JSON.
Exit status 1 if any answer was a 5xx, lost, or not what its request kind should get."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from florisense_model.cli import run_cli
from florisense_model.perf.http_load import run_load
from florisense_model.perf.loadtest import request_mix
from florisense_model.photos import image_files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", required=True, nargs="+", help="photo files or folders")
    parser.add_argument("--url", default="http://127.0.0.1:8080/predict")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds")
    parser.add_argument("--invalid-every", type=int, default=4, help="one junk request in N")
    parser.add_argument("--photos", type=int, default=16, help="distinct photos to cycle through")
    parser.add_argument("--json", default="", help="write the report to this file")
    args = parser.parse_args()
    if not 1 <= args.concurrency <= 64 or not 0 < args.duration <= 3600:
        raise ValueError("--concurrency must be 1..64 and --duration 0..3600 s")
    photos = [path.read_bytes() for path in image_files(args.images)[: args.photos]]
    report = run_load(
        args.url, request_mix(photos, args.invalid_every), args.concurrency, args.duration
    )
    print(
        f"{report['requests']} requests in {report['duration_s']} s at concurrency "
        f"{report['concurrency']}: {report['requests_per_s']} req/s "
        f"({report['answered_per_s']} answered, {report['rate_limited']} rate-limited 429)"
    )
    print(
        f"latency p50 {report['p50_ms']} ms, p95 {report['p95_ms']} ms, p99 {report['p99_ms']} ms"
    )
    for key, count in report["by_kind_and_status"].items():
        print(f"  {key:<34}{count:>7}")
    print(
        f"5xx: {report['server_errors']}, lost: {report['lost']} "
        f"(stale keep-alive connections retried: {report['stale_connections_retried']})"
    )
    for problem, count in report["unexpected"].items():
        print(f"  UNEXPECTED {problem}: {count}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    if report["unexpected"]:
        sys.exit(1)


if __name__ == "__main__":
    run_cli(main)
