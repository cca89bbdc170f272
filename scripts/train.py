"""`main` entry point: train, log, register and gate a new version of the FloriSense model."""

from __future__ import annotations

import argparse
from dataclasses import fields

from florisense_model.training import TrainConfig, train_and_register
from scripts.cli import run_cli


def whole_number(text: str) -> int:
    """MLflow has no integer parameter type: accept "8" and "8.0", refuse "8.5"."""
    value = float(text)
    if not value.is_integer():
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text}")
    return int(value)


def parse_args(argv: list[str] | None = None) -> TrainConfig:
    parser = argparse.ArgumentParser(description=__doc__)
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


if __name__ == "__main__":
    run_cli(lambda: train_and_register(parse_args()))
