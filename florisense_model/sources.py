"""Where the photos come from: a local folder, $FLORISENSE_DATA_DIR, or an archive URL."""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.request
import zipfile
from pathlib import Path

from florisense_model.config import ENV_DATA_DIR

CACHE_DIR = Path(os.environ.get("FLORISENSE_CACHE_DIR", "~/.cache/florisense")).expanduser()
DOWNLOAD_TIMEOUT_S = 60

NO_DATA_MESSAGE = (
    "no photos to train on: pass -P data_dir=DIR (one sub-folder per class, e.g. dandelion/ and "
    f"grass/), set {ENV_DATA_DIR}, or pass the URL of a .zip/.tar.gz archive of such folders"
)


def resolve_data_dir(value: str | None) -> Path:
    """A local folder with one sub-folder per class; downloads and unpacks an archive URL once."""
    value = (value or "").strip() or os.environ.get(ENV_DATA_DIR, "").strip()
    if not value:
        raise ValueError(NO_DATA_MESSAGE)
    if value.startswith(("http://", "https://")):
        return _class_root(download_archive(value))
    path = Path(value).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"data directory not found: {path}")
    return path.resolve()


def download_archive(url: str, cache_dir: Path = CACHE_DIR) -> Path:
    """Download and unpack `url` into the cache (once per URL) and return the unpacked folder."""
    target = cache_dir / "datasets" / hashlib.sha256(url.encode()).hexdigest()[:16]
    if (target / ".complete").is_file():
        return target
    target.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.NamedTemporaryFile(dir=target, suffix=".download", delete=False) as archive,
        urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response,
    ):
        shutil.copyfileobj(response, archive)
    try:
        _unpack(Path(archive.name), target)
    finally:
        Path(archive.name).unlink(missing_ok=True)
    (target / ".complete").touch()
    return target


def _unpack(archive: Path, target: Path) -> None:
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as bundle:
            for member in bundle.namelist():
                if not (target / member).resolve().is_relative_to(target.resolve()):
                    raise ValueError(f"unsafe path in archive: {member}")
            bundle.extractall(target)
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as bundle:
            bundle.extractall(target, filter="data")  # refuses absolute paths and ../
    else:
        raise ValueError("the dataset URL must point to a .zip or .tar(.gz) archive")


def _class_root(folder: Path) -> Path:
    """The archive's folder of class sub-folders: the top, or its single top-level folder."""
    entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
    if len(entries) == 1 and entries[0].is_dir():
        inner = [p for p in entries[0].iterdir() if p.is_dir()]
        if len(inner) >= 2:
            return entries[0]
    return folder
