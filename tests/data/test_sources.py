"""Where the photos come from: a folder, $FLORISENSE_DATA_DIR, or an archive URL (served here by a
real HTTP server on 127.0.0.1)."""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
import zipfile
from pathlib import Path

import pytest

from florisense_model import sources


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
    monkeypatch.delenv("FLORISENSE_DATA_DIR")
    with pytest.raises(ValueError, match="no photos to train on"):
        sources.resolve_data_dir("")
    with pytest.raises(FileNotFoundError, match="data directory not found"):
        sources.resolve_data_dir(str(tmp_path / "missing"))
