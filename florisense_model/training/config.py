"""The training parameters. Their defaults are MLproject's (the recipe users read and override
with `-P`), so they are written once; the command line is built from this dataclass."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from florisense_model.config import REGISTERED_MODEL_NAME, RESIZE_MODES

RECIPE = Path(__file__).resolve().parents[2] / "MLproject"
PROMOTE_CHOICES = ("auto", "force", "skip")


def recipe_defaults(entry_point: str = "main") -> dict[str, Any]:
    """The parameter defaults of an MLproject entry point."""
    document = yaml.safe_load(RECIPE.read_text(encoding="utf-8"))
    parameters = document["entry_points"][entry_point]["parameters"]
    return {name: spec["default"] for name, spec in parameters.items() if "default" in spec}


_DEFAULTS = recipe_defaults("main")


@dataclass
class TrainConfig:
    data_dir: str = _DEFAULTS["data_dir"]
    base_weights: str = _DEFAULTS["base_weights"]
    image_size: int = _DEFAULTS["image_size"]
    resize_mode: str = _DEFAULTS["resize_mode"]
    epochs: int = _DEFAULTS["epochs"]
    fine_tune_epochs: int = _DEFAULTS["fine_tune_epochs"]
    fine_tune_layers: int = _DEFAULTS["fine_tune_layers"]
    batch_size: int = _DEFAULTS["batch_size"]
    learning_rate: float = _DEFAULTS["learning_rate"]
    fine_tune_learning_rate: float = _DEFAULTS["fine_tune_learning_rate"]
    dropout: float = _DEFAULTS["dropout"]
    patience: int = _DEFAULTS["patience"]
    seed: int = _DEFAULTS["seed"]
    promote: str = _DEFAULTS["promote"]
    exclusions: str = _DEFAULTS["exclusions"]
    registered_model_name: str = REGISTERED_MODEL_NAME

    def __post_init__(self) -> None:
        # MLproject has no integer type (its numbers are floats): give each field its own type.
        for field in fields(self):
            kind = {"int": int, "float": float, "str": str}[str(field.type)]
            setattr(self, field.name, kind(getattr(self, field.name)))

    def validate(self) -> None:
        """Refuse impossible parameters before any expensive work starts."""
        problems = []
        if not 32 <= self.image_size <= 512:
            problems.append(f"image_size must be between 32 and 512, got {self.image_size}")
        if self.resize_mode not in RESIZE_MODES:
            problems.append(f"resize_mode must be one of {RESIZE_MODES}, got {self.resize_mode!r}")
        if self.epochs < 1 or self.fine_tune_epochs < 0:
            problems.append("epochs must be >= 1 and fine_tune_epochs >= 0")
        if self.fine_tune_layers < 0 or self.batch_size < 1:
            problems.append("fine_tune_layers must be >= 0 and batch_size >= 1")
        if not (0 < self.learning_rate < 1 and 0 < self.fine_tune_learning_rate < 1):
            problems.append("learning rates must be in (0, 1)")
        if not 0 <= self.dropout < 1:
            problems.append(f"dropout must be in [0, 1), got {self.dropout}")
        if self.promote not in PROMOTE_CHOICES:
            problems.append(f"promote must be one of {PROMOTE_CHOICES}, got {self.promote!r}")
        if problems:
            raise ValueError("; ".join(problems))


def whole_number(text: str) -> int:
    """MLflow has no integer parameter type: accept "8" and "8.0", refuse "8.5"."""
    value = float(text)
    if not value.is_integer():
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text}")
    return int(value)


def parse_args(argv: list[str] | None = None, description: str = "") -> TrainConfig:
    """A TrainConfig from `--data-dir … --epochs …`: one option per field, same defaults."""
    parser = argparse.ArgumentParser(description=description)
    defaults = TrainConfig()
    for field in fields(TrainConfig):
        default = getattr(defaults, field.name)
        parser.add_argument(
            f"--{field.name.replace('_', '-')}",
            dest=field.name,
            type=whole_number if isinstance(default, int) else type(default),
            default=default,
            help=f"default: {default!r}",
        )
    return TrainConfig(**vars(parser.parse_args(argv)))
