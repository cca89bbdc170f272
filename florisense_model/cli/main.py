"""`florisense`: the one command. Each subcommand has its own parser in its own module; none has
logic of its own (it calls the package)."""

from __future__ import annotations

import argparse
import sys

from florisense_model.cli import data, retrain, run_cli

# name -> module with `add_parser(subparsers)`; each sets `func` on its parser.
SUBCOMMANDS = {"data": data, "retrain": retrain}


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="florisense",
        description="FloriSense: tell dandelions (pissenlit) from grass (herbe). "
        "Run `florisense COMMAND --help` for each command.",
    )
    subparsers = top.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for module in SUBCOMMANDS.values():
        module.add_parser(subparsers)
    return top


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    run_cli(lambda: sys.exit(args.func(args) or 0))


if __name__ == "__main__":
    main()
