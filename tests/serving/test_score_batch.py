"""Batch scoring on a REAL Spark (`local[2]`, pyspark with Debian's Java) through MLflow's
spark_udf, with the test stack's Production model and the real photos: one row per photo, the
same labels as the in-process pyfunc, corrupt files as row errors, one-line failures."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import mlflow
import pandas as pd
import pyarrow.parquet as pq
import pytest

from tests.support.http import run_script
from tests.support.images import require_env_path
from tests.support.servers import child_env

pytestmark = pytest.mark.integration
PER_CLASS = 30


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """Real photos in class folders, plus two corrupt files and a note that is not a photo."""
    photos = require_env_path("FLORISENSE_DATA_DIR")
    root = tmp_path_factory.mktemp("archive")
    for label in ("dandelion", "grass"):
        (root / label).mkdir()
        for path in sorted((photos / label).glob("*.jpg"))[:PER_CLASS]:
            shutil.copy(path, root / label / path.name)
    (root / "unsorted").mkdir()
    first_grass = sorted((root / "grass").iterdir())[0]
    (root / "unsorted" / "truncated.JPG").write_bytes(first_grass.read_bytes()[:300])
    (root / "unsorted" / "empty.png").write_bytes(b"")
    # A name Spark's listing escapes (a space, an accent): still one row, scored.
    shutil.copy(sorted((root / "dandelion").iterdir())[0], root / "unsorted" / "pré du 2.jpg")
    (root / "unsorted" / "notes.txt").write_text("not a photo: not scored")
    return root


@pytest.fixture(scope="module")
def scored(serving_stack, archive, tmp_path_factory):
    config, _ = serving_stack
    output = tmp_path_factory.mktemp("scored") / "photos.parquet"
    figures = tmp_path_factory.mktemp("figures") / "job.json"
    env = child_env(MLFLOW_TRACKING_URI=config.tracking_uri)
    result = run_script(
        "score_batch", "--model-uri", "models:/florisense/Production", "--input", str(archive),
        "--output", str(output), "--master", "local[2]", "--json", str(figures), env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return config, pd.read_parquet(output), json.loads(figures.read_text()), result.stderr, output


def test_one_row_per_photo_with_the_promised_columns(scored, archive):
    _, rows, figures, log, _ = scored
    photos = [p for p in archive.rglob("*") if p.suffix.lower() in (".jpg", ".png")]
    assert len(rows) == len(photos) == 2 * PER_CLASS + 3 == figures["rows"]
    assert sorted(rows["path"].str.removeprefix("file:")) == sorted(str(p) for p in photos)
    assert list(rows.columns) == [
        "path", "label", "confidence", "probabilities", "error", "model_version", "run_id",
        "model_uri",
    ]  # fmt: skip
    assert "scored 63 photos (2 with an error)" in log and "tasks done" in log


def test_labels_and_probabilities_equal_the_in_process_pyfunc(scored):
    config, rows, figures, _, _ = scored
    good = rows[rows["error"].isna()].sort_values("path")
    mlflow.set_tracking_uri(config.tracking_uri)
    model = mlflow.pyfunc.load_model(figures["model_uri"])
    images = [
        base64.b64encode(Path(p.removeprefix("file:")).read_bytes()).decode() for p in good["path"]
    ]
    local = model.predict(pd.DataFrame({"image": images}))
    assert good["label"].tolist() == local["label"].tolist()
    for spark_row, local_row in zip(good["probabilities"], local["probabilities"], strict=True):
        spark_map = dict(spark_row)
        assert spark_map.keys() == local_row.keys()
        for label, probability in local_row.items():
            assert spark_map[label] == pytest.approx(probability, abs=1e-6)
    assert good["confidence"].tolist() == pytest.approx(local["confidence"].tolist(), abs=1e-6)
    # Every row names the version that produced it: the one Production pointed at.
    version = figures["model_uri"].rsplit("/", 1)[1]
    assert set(rows["model_version"]) == {version} and version.isdigit()
    assert rows["run_id"].notna().all()


def test_corrupt_files_are_row_errors_not_a_failed_job(scored):
    _, rows, _, _, output = scored
    bad = rows[rows["error"].notna()]
    bad = bad.set_index(bad["path"].str.rsplit("/", n=1).str[1])
    assert sorted(bad.index) == ["empty.png", "truncated.JPG"]
    assert "empty image" in bad.loc["empty.png", "error"]
    assert (
        "corrupt" in bad.loc["truncated.JPG", "error"]
        or "not a recognised" in bad.loc["truncated.JPG", "error"]
    )
    assert bad["label"].isna().all() and bad["probabilities"].isna().all()
    # Nulls in Parquet, not NaN: `confidence IS NULL` finds exactly the error rows.
    table = pq.read_table(output)
    assert table.column("confidence").null_count == table.column("error").drop_null().length() == 2


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--input", "/no/such/folder"], "no such file or folder: /no/such/folder"),
        (["--model-uri", "models:/florisense/999"], "cannot open the model models:/florisense/999"),
        # No FloriSense code path ever moves a version to Staging (promotion goes to Production).
        (["--model-uri", "models:/florisense/Staging"], "no model version behind"),
        (["--model-uri", "models:/no-such-model/1"], "cannot open the model models:/no-such"),
        # No Maven repository here: the S3A connector cannot be fetched, and the job says so.
        (["--input", "s3://mlflow-artifacts/photos"], "needs Hadoop's S3A connector"),
    ],
)
def test_a_missing_path_or_model_is_one_clear_line(serving_stack, tmp_path, arguments, message):
    config, photos = serving_stack
    defaults = {"--model-uri": "models:/florisense/Production", "--input": str(photos)}
    defaults.update(dict(zip(arguments[::2], arguments[1::2], strict=True)))
    command = [part for pair in defaults.items() for part in pair]
    result = run_script(
        "score_batch", *command, "--output", str(tmp_path / "out.parquet"),
        env=child_env(MLFLOW_TRACKING_URI=config.tracking_uri), timeout=300,
    )  # fmt: skip
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("florisense: error")]
    assert len(lines) == 1 and message in lines[0], result.stderr[-2000:]
    # The last line is ours (Spark's own JVM may print its failure above it), no Python trace.
    assert result.stderr.strip().splitlines()[-1] == lines[0]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out.parquet").exists()


def test_the_batch_benchmark_compares_spark_with_the_in_process_pyfunc(serving_stack, tmp_path):
    config, photos = serving_stack
    report = tmp_path / "batch.json"
    result = run_script(
        "benchmark_batch", "--input", str(photos), "--master", "local[2]", "--json", str(report),
        env=child_env(MLFLOW_TRACKING_URI=config.tracking_uri),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(report.read_text())
    assert figures["spark"]["rows"] == figures["photos"] == len(list(photos.rglob("*.jpg")))
    assert figures["spark"]["errors"] == 0
    assert figures["spark"]["images_per_s"] > 0 and figures["in_process"]["images_per_s"] > 0
    assert set(figures["where_spark_time_goes_s"]) == {
        "spark_start", "model_load_per_worker", "predict_in_process_equivalent",
        "rest_listing_arrow_scheduling_parquet",
    }  # fmt: skip
