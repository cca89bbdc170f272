"""Files other processes read while the stack rewrites them."""

from __future__ import annotations

from pathlib import Path


def write_atomically(target: Path, text: str) -> None:
    """Write through a temporary file and a rename: a reader (nginx's config reload, the
    follower, Prometheus's file_sd) sees the old or the new content, never half."""
    temporary = target.with_suffix(".tmp")
    temporary.write_text(text)
    temporary.replace(target)
