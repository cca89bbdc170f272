"""Shared command-line behaviour: a clear one-line error and exit code 2, not a stack trace."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from mlflow.exceptions import MlflowException


def run_cli(main: Callable[[], Any]) -> None:
    """Run `main`; expected failures (bad parameters, missing files or servers) print one line."""
    try:
        main()
    except (ValueError, FileNotFoundError, MlflowException, ConnectionError) as exc:
        message = exc.message if isinstance(exc, MlflowException) else str(exc)
        print(f"florisense: error: {message}", file=sys.stderr)
        sys.exit(2)


def first_line(error: BaseException | str, limit: int = 200) -> str:
    """An error's first line, for a log or a one-line message (its type if it has no text)."""
    text = str(error).strip()
    line = text.splitlines()[0] if text else type(error).__name__
    return line[:limit]


def log(message: str) -> None:
    """One timestamped line on stderr: the log format of the stack's long-running services."""
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}", file=sys.stderr, flush=True)
