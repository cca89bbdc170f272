"""Where the photos come from: a folder, $FLORISENSE_DATA_DIR, or an archive URL (served here by a
real HTTP server on 127.0.0.1)."""

from __future__ import annotations

import functools
import http.server
import shutil
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest

from florisense_model.training import sources
from tests.support.project import ROOT
from tests.support.servers import child_env, free_port


@pytest.fixture
def http_root(tmp_path: Path):
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_archive_url_is_downloaded_once_and_unpacked(http_root, dataset_dir, tmp_path, monkeypatch):
    root, base = http_root
    shutil.make_archive(str(root / "photos"), "zip", dataset_dir.parent, dataset_dir.name)
    monkeypatch.setattr(sources, "CACHE_DIR", tmp_path / "cache")
    folder = sources.resolve_data_dir(f"{base}/photos.zip")
    assert sorted(p.name for p in folder.iterdir()) == ["dandelion", "grass"]
    assert len(list((folder / "grass").glob("*.jpg"))) == 20
    (root / "photos.zip").unlink()  # a second call must come from the cache
    assert sources.resolve_data_dir(f"{base}/photos.zip") == folder


def test_archive_with_unsafe_paths_is_refused(http_root, tmp_path, monkeypatch):
    root, base = http_root
    with zipfile.ZipFile(root / "evil.zip", "w") as bundle:
        bundle.writestr("../../escape.txt", "no")
    monkeypatch.setattr(sources, "CACHE_DIR", tmp_path / "cache")
    with pytest.raises(ValueError, match="unsafe path"):
        sources.resolve_data_dir(f"{base}/evil.zip")
    assert not (tmp_path / "escape.txt").exists()


def test_environment_variable_and_clear_errors(dataset_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("FLORISENSE_DATA_DIR", str(dataset_dir))
    assert sources.resolve_data_dir("") == dataset_dir.resolve()
    with pytest.raises(FileNotFoundError, match="data directory not found"):
        sources.resolve_data_dir(str(tmp_path / "missing"))


COMMIT = "82fc896ae71a910ca93bdaccd492630bae3ed1c3"


def github_like_archive(root: Path, photos: Path) -> str:
    """A .tar.gz laid out as GitHub serves a commit: greenr-airflow-<commit>/ holding a README,
    data/dandelion.csv (not a class) and data/<class>/ photos. Returns its path on the server."""
    top = root / "build" / f"greenr-airflow-{COMMIT}"
    shutil.copytree(photos, top / "data")
    (top / "data" / "dandelion.csv").write_text("url\n")
    (top / "README.md").write_text("greenr\n")
    (root / "archive").mkdir()
    shutil.make_archive(str(root / "archive" / COMMIT), "gztar", root / "build", top.name)
    shutil.rmtree(root / "build")
    return f"/archive/{COMMIT}.tar.gz#subdirectory=data"


@pytest.fixture
def default_photos_served(http_root, dataset_dir, tmp_path, monkeypatch):
    """The default dataset URL pointed at a local server with a GitHub-like archive."""
    root, base = http_root
    monkeypatch.setenv(sources.ENV_DEFAULT_DATASET_URL, base + github_like_archive(root, dataset_dir))
    monkeypatch.setattr(sources, "CACHE_DIR", tmp_path / "cache")
    monkeypatch.delenv("FLORISENSE_DATA_DIR", raising=False)
    return root


def test_no_photos_means_the_default_set_downloaded_once_and_verified(
    default_photos_served, dataset_dir, monkeypatch
):
    lines: list[str] = []
    folder = sources.resolve_data_dir("", log=lines.append)
    assert folder.name == "data" and folder.parent.name == f"greenr-airflow-{COMMIT}"
    assert {p.name for p in folder.iterdir() if p.is_dir()} == {"dandelion", "grass"}
    assert any(line.startswith("downloading http://127.0.0.1") for line in lines)
    # These are generated photos, not the product's: the check says so, and training goes on.
    warning = next(line for line in lines if "differ from the expected set" in line)
    assert "40 files (expected 400)" in warning
    # The real set's figures are what the check compares with.
    count, digest = sources.fingerprint(folder)
    monkeypatch.setattr(sources, "DEFAULT_DATASET_FILES", count)
    monkeypatch.setattr(sources, "DEFAULT_DATASET_SHA256", digest)
    shutil.rmtree(default_photos_served / "archive")  # from now on only the cache can answer
    again: list[str] = []
    assert sources.resolve_data_dir("", log=again.append) == folder
    assert again[-1].startswith("photos verified: 40 files")
    assert not any(line.startswith("downloading") for line in again)


def test_an_empty_folder_means_the_default_set(default_photos_served, tmp_path):
    empty = tmp_path / "data"
    empty.mkdir()
    lines: list[str] = []
    folder = sources.resolve_data_dir(str(empty), log=lines.append)
    assert (folder / "grass").is_dir() and f"{empty} is empty" in lines[0]


def test_offline_the_default_set_gives_one_line_naming_the_url_and_the_way_out(
    monkeypatch, tmp_path
):
    closed = f"http://127.0.0.1:{free_port()}/archive/{COMMIT}.tar.gz#subdirectory=data"
    env = child_env(FLORISENSE_DEFAULT_DATASET_URL=closed, FLORISENSE_CACHE_DIR=str(tmp_path))
    env.pop("FLORISENSE_DATA_DIR", None)
    result = subprocess.run(
        [sys.executable, "-m", "florisense_model.training.sources"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("florisense: error")]
    assert len(errors) == 1 and "Traceback" not in result.stderr
    assert closed.split("#")[0] in errors[0] and "FLORISENSE_DATA_DIR=/path/to/photos" in errors[0]
