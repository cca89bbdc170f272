"""Score a model version on the SYNTHETIC lawns (perf/lawns.py): per flower width, the share of
lawns answered dandelion (recall); the share of flower-free lawns answered dandelion (false
positives); and, for versions that answer `dandelions`, how often the count is within one.

    python -m florisense_model.perf.lawn_score MODEL_URI LAWNS_DIR [--out JSON]
"""

from __future__ import annotations

import argparse
import base64
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from florisense_model.perf.report import write_figures

DANDELION = "dandelion"


def score(lawns: list[dict[str, Any]], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The figures from lawns.json's entries and the model's answer rows, in the same order."""
    by_width: dict[str, list[bool]] = defaultdict(list)
    empty: list[bool] = []
    counted: list[bool] = []
    for lawn, row in zip(lawns, rows, strict=True):
        said_dandelion = row.get("label") == DANDELION
        if lawn["width_fraction"] is None:
            empty.append(said_dandelion)
        else:
            by_width[f"{lawn['width_fraction']:.2f}"].append(said_dandelion)
        if isinstance(row.get("dandelions"), list):
            counted.append(abs(len(row["dandelions"]) - len(lawn["boxes"])) <= 1)
    small = [hit for width, hits in by_width.items() if float(width) <= 0.04 for hit in hits]
    return {
        "synthetic": True,
        "recall_by_width": {w: round(sum(h) / len(h), 3) for w, h in sorted(by_width.items())},
        "lawns_by_width": {w: len(h) for w, h in sorted(by_width.items())},
        "recall_at_most_4pct": round(sum(small) / len(small), 3) if small else None,
        "empty_lawns": len(empty),
        "false_positive_rate": round(sum(empty) / len(empty), 3) if empty else None,
        "count_within_one": round(sum(counted) / len(counted), 3) if counted else None,
    }


def main(argv: list[str] | None = None) -> None:
    import mlflow.pyfunc
    import pandas as pd

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_uri", help="e.g. models:/florisense/Production")
    parser.add_argument("lawns", type=Path, help="a folder perf/lawns.py wrote")
    parser.add_argument("--out", type=Path, default=Path("test-artifacts/lawn-score.json"))
    args = parser.parse_args(argv)
    lawns = json.loads((args.lawns / "lawns.json").read_text())["lawns"]
    model = mlflow.pyfunc.load_model(args.model_uri)
    images = [base64.b64encode((args.lawns / lawn["name"]).read_bytes()).decode() for lawn in lawns]
    rows: list[dict[str, Any]] = []
    for start in range(0, len(images), 16):  # the model's own batch limit is above this
        answer = model.predict(pd.DataFrame({"image": images[start : start + 16]}))
        rows.extend(answer.to_dict("records"))
    figures = score(lawns, rows) | {"model_uri": args.model_uri, "lawns": len(lawns)}
    write_figures(figures, args.out)


if __name__ == "__main__":
    main()
