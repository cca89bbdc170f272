"""The labelled photos in S3, against a real S3 server (`rclone serve s3`): `florisense data add`
checks, de-duplicates and uploads; the manifest names the dataset version; a training run from
the bucket logs that version with MLflow's dataset API."""

from __future__ import annotations

import hashlib
import json
import subprocess

import pytest

from florisense_model.pipeline.manifest import DATASET_DIGEST_TAG, Entry, Manifest
from florisense_model.pipeline.store import DataStore
from florisense_model.stack import lifecycle
from florisense_model.stack.s3 import s3_client
from florisense_model.stack.settings import DATA_BUCKET, DATA_URI, StackConfig, free_port
from tests.support.images import CLASS_COLOURS, encode, make_dataset, photo
from tests.support.servers import BIN, child_env

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """A real S3 server with the stack's buckets; (config, the env a `florisense` child needs)."""
    root = tmp_path_factory.mktemp("data-store")
    config = StackConfig(run_dir=root / "run", s3_port=free_port(), s3_metrics_port=free_port())
    try:
        lines = list(lifecycle.up(config, only={"s3"}))
        assert any(DATA_BUCKET in line for line in lines), lines
        env = child_env(
            FLORISENSE_RUN_DIR=str(config.run_dir), FLORISENSE_S3_PORT=str(config.s3_port)
        )
        yield config, env
    finally:
        lifecycle.down(config)


@pytest.fixture
def store(s3):
    """The data bucket, emptied for each test."""
    config, _ = s3
    client = s3_client(config)
    for entry in DataStore(client, DATA_URI).manifest().entries:
        client.delete_object(Bucket=DATA_BUCKET, Key=entry.key)
    return DataStore(client, DATA_URI)


def florisense(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "florisense"), *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_manifest_digest_names_the_content_and_survives_json():
    a = Entry("labelled/grass/" + "a" * 64 + ".jpg", "grass", "a" * 64, 10)
    b = Entry("labelled/dandelion/" + "b" * 64 + ".png", "dandelion", "b" * 64, 20)
    manifest = Manifest(DATA_URI, (b, a))
    assert len(manifest.digest) == 32
    assert Manifest.from_json(manifest.to_json()) == manifest
    relabelled = Manifest(DATA_URI, (b, Entry(a.key, "dandelion", a.sha256, a.size)))
    assert relabelled.digest != manifest.digest
    # A manifest edited by hand (an entry dropped, the digest kept) is refused.
    document = json.loads(manifest.to_json())
    document["entries"].pop()
    with pytest.raises(ValueError, match="digest does not match"):
        Manifest.from_json(json.dumps(document))


def test_data_add_checks_each_file_and_uploads_the_rest(s3, store, tmp_path):
    _, env = s3
    folder = tmp_path / "new"
    folder.mkdir()
    good = [encode(photo(CLASS_COLOURS["dandelion"], (96, 128), seed=i)) for i in range(3)]
    for index, data in enumerate(good):
        (folder / f"{index}.jpg").write_bytes(data)
    (folder / "copy.jpg").write_bytes(good[0])  # the same photo under another name
    (folder / "broken.jpg").write_bytes(good[1][: len(good[1]) // 3])  # a cut-off download
    (folder / "notes.txt").write_text("not a photo")
    (folder / "fake.png").write_bytes(b"<html>this is a web page</html>")

    result = florisense(env, "data", "add", str(folder), "--label", "dandelion")
    out = result.stdout
    assert result.returncode == 1, result.stderr  # some were refused
    assert "copy.jpg: skipped: already in the dataset" in out or "0.jpg: skipped" in out
    assert "broken.jpg: refused: unreadable" in out
    assert "notes.txt: refused: not a photo file (.txt)" in out
    assert "fake.png: refused: unreadable: not a recognised image" in out
    assert "3 added, 1 already there, 3 refused" in out

    manifest = store.manifest()
    assert manifest.counts() == {"dandelion": 3}
    # Content-addressed and whole: each object's bytes hash to its key.
    hashes = {hashlib.sha256(d).hexdigest() for d in good}
    assert manifest.hashes == hashes
    for entry in manifest.entries:
        body = store.client.get_object(Bucket=DATA_BUCKET, Key=entry.key)["Body"].read()
        assert hashlib.sha256(body).hexdigest() == entry.sha256 and len(body) == entry.size

    listed = florisense(env, "data", "list")
    assert listed.returncode == 0, listed.stderr
    assert manifest.digest in listed.stdout and "dandelion" in listed.stdout
    as_json = json.loads(florisense(env, "data", "list", "--json").stdout)
    assert as_json["digest"] == manifest.digest and as_json["counts"] == {"dandelion": 3}

    again = florisense(env, "data", "add", str(folder / "1.jpg"), "--label", "grass")
    assert again.returncode == 0
    assert (
        "skipped: already in the dataset" in again.stdout and "(labelled dandelion)" in again.stdout
    )
    assert store.manifest().digest == manifest.digest


def test_an_unknown_class_is_refused_in_one_line_and_nothing_is_uploaded(s3, store, tmp_path):
    _, env = s3
    path = tmp_path / "one.jpg"
    path.write_bytes(encode(photo(CLASS_COLOURS["grass"], (96, 128), seed=7)))
    result = florisense(env, "data", "add", str(path), "--label", "clover")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "unknown class 'clover'" in result.stderr and "--new-class" in result.stderr
    assert store.manifest().entries == ()
    allowed = florisense(env, "data", "add", str(path), "--label", "clover", "--new-class")
    assert allowed.returncode == 0, allowed.stderr
    assert store.manifest().counts() == {"clover": 1}


def test_a_missing_s3_server_is_one_line(tmp_path):
    env = child_env(FLORISENSE_RUN_DIR=str(tmp_path / "run"), FLORISENSE_S3_PORT=str(free_port()))
    result = florisense(env, "data", "list")
    assert result.returncode == 2
    assert "cannot reach the S3 server" in result.stderr
    assert "Traceback" not in result.stderr


def test_materialise_checks_every_photo_against_its_hash(s3, store, tmp_path):
    config, _ = s3
    photos = make_dataset(tmp_path / "photos", per_class=3)
    store.add(sorted((photos / "grass").iterdir()), "grass", ["grass"], log=lambda line: None)
    manifest = store.manifest()
    folder = store.materialise(manifest, tmp_path / "cache")
    assert sorted(p.name for p in (folder / "grass").iterdir()) == sorted(
        f"{e.sha256}.jpg" for e in manifest.entries
    )
    # Someone swaps a photo's bytes on the S3 server's disk: the copy refuses it.
    victim = config.run_dir / "s3" / DATA_BUCKET / manifest.entries[0].key
    victim.write_bytes((photos / "dandelion" / "000.jpg").read_bytes())
    with pytest.raises(ValueError, match="does not match its SHA-256"):
        store.materialise(manifest, tmp_path / "other-cache")


def test_training_from_the_bucket_logs_its_dataset(s3, store, tmp_path, monkeypatch):
    """`mlflow run .` with the bucket as data_dir: the run's dataset input has the manifest's
    digest and the S3 prefix as source; the manifest is an artifact and a tag names it."""
    from mlflow import MlflowClient

    from tests.support.mlflow_runs import SMALL, mlflow_run
    from tests.support.servers import mlflow_tracking_server

    _, env = s3
    photos = make_dataset(tmp_path / "photos", per_class=12)
    for label in ("dandelion", "grass"):
        store.add(sorted((photos / label).iterdir()), label, CLASS_COLOURS, log=lambda _: None)
    manifest = store.manifest()
    for name in ("FLORISENSE_RUN_DIR", "FLORISENSE_S3_PORT"):
        monkeypatch.setenv(name, env[name])  # mlflow_run's child inherits them
    monkeypatch.setenv("FLORISENSE_CACHE_DIR", str(tmp_path / "cache"))
    with mlflow_tracking_server(tmp_path / "mlflow") as tracking_uri:
        result = mlflow_run(
            tracking_uri, "-P", f"data_dir={DATA_URI}", "-P", "promote=skip", *SMALL
        )
        assert result.returncode == 0, result.stderr[-2000:]
        client = MlflowClient(tracking_uri)
        (run,) = client.search_runs(["0"])
        (dataset_input,) = run.inputs.dataset_inputs
        assert dataset_input.dataset.digest == manifest.digest
        assert json.loads(dataset_input.dataset.source) == {"uri": DATA_URI}
        assert run.data.tags[DATASET_DIGEST_TAG] == manifest.digest
        logged = client.download_artifacts(run.info.run_id, "dataset/manifest.json", str(tmp_path))
        assert Manifest.read(logged) == manifest
