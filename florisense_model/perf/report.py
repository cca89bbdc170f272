"""A benchmark's figures: kept as JSON (compared across runs) and printed one per line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_figures(figures: dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n")
    width = max(map(len, figures), default=0)
    for name, value in figures.items():
        print(f"{name:>{width}}: {value}")
