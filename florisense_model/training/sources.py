"""Where the photos come from: a local folder, $FLORISENSE_DATA_DIR, an archive URL, or, when none
is given (or the folder is empty), the original product's photos, downloaded once into the cache.

An archive URL may name a folder inside the archive with pip's fragment, `#subdirectory=PATH`
(PATH is looked up in the archive, or in its single top-level folder, as GitHub archives have).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from urllib.parse import parse_qs, urldefrag

from florisense_model.cli import run_cli
from florisense_model.config import ENV_DATA_DIR
from florisense_model.photos import class_folders
from florisense_model.pipeline.manifest import Manifest

CACHE_DIR = Path(os.environ.get("FLORISENSE_CACHE_DIR", "~/.cache/florisense")).expanduser()
DOWNLOAD_TIMEOUT_S = 60

# The original product's training photos: the data/ folder of btphan95/greenr-airflow at this
# commit (200 dandelion and 200 grass JPEGs), and what that folder must hold once unpacked.
DEFAULT_DATASET_URL = (
    "https://github.com/btphan95/greenr-airflow/archive/"
    "82fc896ae71a910ca93bdaccd492630bae3ed1c3.tar.gz#subdirectory=data"
)
DEFAULT_DATASET_FILES = 400
DEFAULT_DATASET_SHA256 = "71049f5e525d7980372078ddcfc37d4c8d4672c00c0b2b9e87f8e392fe7b4930"
# Tests (and mirrors) point the default somewhere else.
ENV_DEFAULT_DATASET_URL = "FLORISENSE_DEFAULT_DATASET_URL"


def default_dataset_url() -> str:
    return os.environ.get(ENV_DEFAULT_DATASET_URL, "").strip() or DEFAULT_DATASET_URL


def resolve_data_dir(value: str | None, log=print) -> Path:
    """A local folder with one sub-folder per class; an archive URL is downloaded and unpacked
    once. Nothing given, or an empty folder: the default photos."""
    value = (value or "").strip() or os.environ.get(ENV_DATA_DIR, "").strip()
    if not value:
        log(f"no photos given ({ENV_DATA_DIR} or -P data_dir): using the original product's photos")
        return download_default(log)
    if value.startswith(("http://", "https://")):
        return download(value, log)
    path = Path(value).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"data directory not found: {path}")
    if not any(not p.name.startswith(".") for p in path.iterdir()):
        log(f"{path} is empty: using the original product's photos")
        return download_default(log)
    return path.resolve()


def resolve_dataset(value: str | None, log=print) -> tuple[Path, Manifest]:
    """The photos to train on as a local folder, and the dataset version they are. Beside what
    resolve_data_dir takes: an s3:// prefix (its current photos) or a manifest file (.json, the
    retraining flow's snapshot), copied once into the cache and checked against their SHA-256."""
    from florisense_model.pipeline.store import folder_manifest, open_store

    value = (value or "").strip() or os.environ.get(ENV_DATA_DIR, "").strip()
    if value.startswith("s3://") or value.endswith(".json"):
        manifest = Manifest.read(value) if value.endswith(".json") else None
        store = open_store(manifest.source if manifest else value)
        manifest = manifest or store.manifest()
        if not manifest.entries:
            raise ValueError(f"no photos under {store.uri}: add some with `florisense data add`")
        log(f"dataset {manifest.digest} from {store.uri}: {manifest.counts()}")
        return store.materialise(manifest, CACHE_DIR / "datasets" / "s3"), manifest
    folder = resolve_data_dir(value, log)
    return folder, folder_manifest(folder)


def download_default(log=print) -> Path:
    """The default photos, checked against their known file count and content hash."""
    url = default_dataset_url()
    folder = download(url, log)
    count, digest = fingerprint(folder)
    if (count, digest) == (DEFAULT_DATASET_FILES, DEFAULT_DATASET_SHA256):
        log(f"photos verified: {count} files, content sha256 {digest[:12]}…")
    else:
        log(
            f"WARNING: the photos from {url} differ from the expected set: {count} files "
            f"(expected {DEFAULT_DATASET_FILES}), content sha256 {digest[:12]}… (expected "
            f"{DEFAULT_DATASET_SHA256[:12]}…); training goes on with what arrived"
        )
    return folder


def fingerprint(folder: Path) -> tuple[int, str]:
    """(files under class folders, sha256 over their relative paths and content hashes)."""
    digest, count = hashlib.sha256(), 0
    for files in class_folders(folder).values():
        for path in files:
            content = hashlib.sha256(path.read_bytes()).hexdigest()
            digest.update(f"{path.relative_to(folder).as_posix()}\t{content}\n".encode())
            count += 1
    return count, digest.hexdigest()


def download(url: str, log=print, cache_dir: Path | None = None) -> Path:
    """Download and unpack the archive at `url` (once: then from the cache) and return its folder
    of class sub-folders (the `#subdirectory=` one if named)."""
    archive_url, fragment = urldefrag(url)
    subdirectory = parse_qs(fragment).get("subdirectory", [""])[0].strip("/")
    unpacked = download_archive(archive_url, log, cache_dir or CACHE_DIR)
    if subdirectory:
        return _subfolder(unpacked, subdirectory, url)
    return _class_root(unpacked)


def download_archive(url: str, log=print, cache_dir: Path | None = None) -> Path:
    """Download and unpack `url` into the cache (once per URL) and return the unpacked folder."""
    target = (cache_dir or CACHE_DIR) / "datasets" / hashlib.sha256(url.encode()).hexdigest()[:16]
    if (target / ".complete").is_file():
        return target
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target, suffix=".download", delete=False) as archive:
        try:
            with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
                log(f"downloading {url}")
                _copy_with_progress(response, archive, response.headers.get("Content-Length"))
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            Path(archive.name).unlink(missing_ok=True)
            reason = getattr(exc, "reason", exc)
            raise ConnectionError(
                f"could not download {url} ({reason}); without internet, point at local photos "
                f"instead: {ENV_DATA_DIR}=/path/to/photos (a folder with dandelion/ and grass/)"
            ) from None
    try:
        _unpack(Path(archive.name), target)
    finally:
        Path(archive.name).unlink(missing_ok=True)
    (target / ".complete").touch()
    return target


def _copy_with_progress(source, destination, length: str | None) -> None:
    """Copy a download to a file with a progress bar (rich, which Keras already brings)."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TransferSpeedColumn,
    )

    columns = (TextColumn("photos"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns) as progress:
        task = progress.add_task("download", total=int(length) if length else None)
        while chunk := source.read(1 << 16):
            destination.write(chunk)
            progress.update(task, advance=len(chunk))


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


def _top(folder: Path) -> Path:
    """The archive's single top-level folder (GitHub's `<repo>-<commit>/`), else the folder."""
    entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else folder


def _subfolder(folder: Path, subdirectory: str, url: str) -> Path:
    for base in (folder, _top(folder)):
        candidate = (base / subdirectory).resolve()
        if candidate.is_relative_to(folder.resolve()) and candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"no folder {subdirectory!r} in the archive at {url}")


def _class_root(folder: Path) -> Path:
    """The archive's folder of class sub-folders: the top, or its single top-level folder."""
    top = _top(folder)
    if top != folder and len([p for p in top.iterdir() if p.is_dir()]) >= 2:
        return top
    return folder


def main() -> None:
    """Print the folder of photos training would use (downloading the default set if needed)."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("data_dir", nargs="?", default="", help=f"default: ${ENV_DATA_DIR}")
    args = parser.parse_args()
    print(resolve_data_dir(args.data_dir, log=lambda line: print(line, file=sys.stderr)))


if __name__ == "__main__":
    run_cli(main)
