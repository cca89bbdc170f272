"""One bounded benchmark run on the same photos: the in-process floor and pyfunc, /invocations
direct, /predict through nginx at concurrency 1, 4, 8 (one image) and with 32-image requests,
cold start of `mlflow models serve`, and its resident memory. Prints a table, writes JSON.
Talks only to 127.0.0.1."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from florisense_model.cli import run_cli
from florisense_model.perf.benchmark import benchmark_in_process, cold_start, metrics_cost
from florisense_model.perf.http_load import photos_request, repeat_request
from florisense_model.photos import image_files
from florisense_model.stack.settings import StackConfig, free_port
from florisense_model.stack.slots import active_slot


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", required=True, nargs="+", help="photo files or folders")
    parser.add_argument("--url", default="http://127.0.0.1:8080/predict")
    parser.add_argument(
        "--invocations-url",
        default="",
        help="default: the model server slot the stack's nginx uses now",
    )
    parser.add_argument("--model-uri", default="models:/florisense/Production")
    parser.add_argument("--requests", type=int, default=25, help="requests per worker")
    parser.add_argument("--repeats", type=int, default=30, help="in-process repetitions")
    parser.add_argument("--json", default="", help="write every figure to this file")
    parser.add_argument(
        "--serving-env",
        type=Path,
        help="also time the cold start and memory of `mlflow models serve` from this venv: the "
        "model's own requirements, as in the model-server image (`make serving-env`)",
    )
    args = parser.parse_args()
    if not args.invocations_url:
        config = StackConfig.from_env()
        port = config.slot_port(str(active_slot(config)["slot"]))
        args.invocations_url = f"http://127.0.0.1:{port}/invocations"
    files = image_files(args.images)
    # TensorFlow's floor is the bare network as TensorFlow runs it by default (one thread per
    # core), not the one-thread setting of a served Keras model, which would slow a 32-image call.
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "0")
    result = benchmark_in_process(args.model_uri, files, args.repeats)
    result["in_process_tf_intra_op_threads"] = os.environ["TF_NUM_INTRAOP_THREADS"]
    one = next(f for f in files if f.name == result["image"]["file"])
    one_photo = photos_request([one.read_bytes()])
    batch = photos_request([files[i % len(files)].read_bytes() for i in range(32)], "batch")

    result["invocations_c1"] = repeat_request(args.invocations_url, one_photo, 1, args.requests)
    for concurrency in (1, 4, 8):
        result[f"predict_c{concurrency}"] = repeat_request(
            args.url, one_photo, concurrency, args.requests
        )
    batches = max(3, args.requests // 5)
    result["predict_batch32_c1"] = repeat_request(args.url, batch, 1, batches)
    if "pyfunc_one_image_explain" in result:  # the served version can draw heat maps
        explained = photos_request([one.read_bytes()], "explain", explain=True)
        result["predict_c1_explain"] = repeat_request(args.url, explained, 1, args.requests)
    tracking_uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    result["metrics_cost"] = metrics_cost(
        tracking_uri, one.read_bytes(), args.requests * 4, bin_dir=args.serving_env / "bin"
        if args.serving_env else None,
    )  # fmt: skip
    print(f"model metrics cost on /invocations (c1, p50): {result['metrics_cost']}")
    result["cold_start"] = cold_start(tracking_uri, free_port(), one.read_bytes())
    if args.serving_env:
        result["cold_start_serving_env"] = cold_start(
            tracking_uri, free_port(), one.read_bytes(), bin_dir=args.serving_env / "bin"
        )

    floors = {
        "floor": (result["floor_one_image"], result["floor_batch_32"]),
        "tensorflow_floor": (
            result["tensorflow_floor_one_image"],
            result["tensorflow_floor_batch_32"],
        ),
    }
    print(f"served runtime: {result['runtime']}")
    print(
        f"{'measure':<28}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'img/s':>9}{'errors':>8}"
        "  ratio to floor / to TensorFlow's floor"
    )
    for key, value in result.items():
        if not isinstance(value, dict) or "p50_ms" not in value:
            continue
        batch = value.get("images_per_request", 1) > 1 or "batch" in key
        # Latency lines by p50; throughput lines (and concurrency) by images per second.
        throughput = batch or key in ("predict_c4", "predict_c8")
        ratios = {}
        for name, (one_image, batch_floor) in floors.items():
            if throughput:
                ratios[name] = value["images_per_s"] / batch_floor["images_per_s"]
            else:
                ratios[name] = (value["p50_ms"] or 0) / one_image["p50_ms"]
        errors = sum(value.get("unexpected", {}).values())
        print(
            f"{key:<28}{value['p50_ms'] or 0:>9.1f}{value.get('p95_ms') or 0:>9.1f}"
            f"{value.get('p99_ms') or 0:>9.1f}{value['images_per_s']:>9.1f}{errors:>8}  "
            f"{ratios['floor']:.2f}x / {ratios['tensorflow_floor']:.2f}x "
            f"{'throughput' if throughput else 'latency'}"
        )
        value["ratio_to_floor"] = round(ratios["floor"], 3)
        value["ratio_to_tensorflow_floor"] = round(ratios["tensorflow_floor"], 3)
    if "pyfunc_one_image_explain" in result:
        result["explain_cost_ms_per_image"] = explain_cost(result)
        print(f"explain (heat maps) costs, ms per image: {result['explain_cost_ms_per_image']}")
    for key in ("cold_start", "cold_start_serving_env"):
        if key in result:
            print(f"{key.replace('_', ' ')}: {result[key]}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


def explain_cost(result: dict) -> dict[str, float]:
    """p50 with `explain` minus without, per image, one photo and a batch (same run)."""
    costs = {}
    for plain, images in (("pyfunc_one_image", 1), ("pyfunc_batch_32", 32)):
        extra = result[f"{plain}_explain"]["p50_ms"] - result[plain]["p50_ms"]
        costs[plain.removeprefix("pyfunc_")] = round(extra / images, 2)
    return costs


if __name__ == "__main__":
    run_cli(main)
