"""Finding photos on disk: class sub-folders (training, evaluation) and the files or folders a
user names on a command line; base64 for requests."""

from __future__ import annotations

import base64
from pathlib import Path

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp"})


def files_under(folder: Path) -> list[Path]:
    """Every file under `folder` (recursively), sorted; hidden files are skipped."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))


def class_folders(root: str | Path) -> dict[str, list[Path]]:
    """class name -> its files, for every (non-hidden) sub-folder of `root`, sorted by name.
    Every file is returned, images or not: callers report the ones that are not photos."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"data directory not found: {root}")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    return {folder.name: files_under(folder) for folder in folders}


def image_files(paths: list[str], per_folder: int | None = None) -> list[Path]:
    """The image files named on a command line: files as given, folders searched (at most
    `per_folder` images from each)."""
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = [p for p in files_under(path) if p.suffix.lower() in IMAGE_SUFFIXES]
            files += found[:per_folder]
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"no such file or folder: {path}")
    return files


def encode_file(path: Path) -> str:
    """A file as the base64 text the model takes."""
    return base64.b64encode(Path(path).read_bytes()).decode("ascii")
