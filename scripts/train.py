"""`main` entry point: train, log, register and gate a new version of the FloriSense model."""

from florisense_model.cli import run_cli
from florisense_model.training.config import parse_args
from florisense_model.training.train import train_and_register

if __name__ == "__main__":
    run_cli(lambda: train_and_register(parse_args(description=__doc__)))
