"""`mlflow run . --env-manager local` against a REAL tracking server: params, metrics, artifacts,
registry version, Production stage and alias, the gate, `promote` and `import_keras`."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import mlflow
import pytest
from mlflow import MlflowClient

from florisense_model.config import PRODUCTION_ALIAS, REGISTERED_MODEL_NAME
from tests.support.images import make_dataset
from tests.support.mlflow_runs import SMALL, mlflow_run, summary_of
from tests.support.servers import BIN, child_env, mlflow_tracking_server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory):
    with mlflow_tracking_server(tmp_path_factory.mktemp("mlflow")) as uri:
        # Global too: MLflow 3 resolves logged-model artifacts through the global URI.
        previous = mlflow.get_tracking_uri()
        mlflow.set_tracking_uri(uri)
        yield uri
        mlflow.set_tracking_uri(previous)


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("data") / "photos", per_class=20)


@pytest.fixture(scope="module")
def first_run(tracking_uri, photos):
    result = mlflow_run(tracking_uri, "-P", f"data_dir={photos}", *SMALL)
    assert result.returncode == 0, result.stderr[-2000:]
    return summary_of(result)


def client_for(uri: str) -> MlflowClient:
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def test_run_logs_params_metrics_and_artifacts(tracking_uri, first_run):
    client = client_for(tracking_uri)
    run = client.get_run(first_run["run_id"])
    params = run.data.params
    assert params["image_size"] == "64" and params["epochs"] == "2"
    for name in (
        "fine_tune_layers",
        "batch_size",
        "learning_rate",
        "fine_tune_learning_rate",
        "seed",
        "promote",
        "base_weights",
        "resize_mode",
        "dataset_sha256",
        "lib_tensorflow-cpu",
        "lib_keras",
        "lib_mlflow",
    ):
        assert name in params, name
    assert len(params["dataset_sha256"]) == 64
    metrics = run.data.metrics
    for name in (
        "test_accuracy",
        "test_balanced_accuracy",
        "test_roc_auc",
        "test_log_loss",
        "test_precision_grass",
        "test_recall_dandelion",
        "test_f1_grass",
    ):
        assert 0.0 <= metrics[name] <= (1.0 if name != "test_log_loss" else 50), name
    # The compiled graph agreed with Keras on the test photos before it was registered.
    assert 0.0 <= metrics["compiled_max_abs_diff"] <= 1e-4
    # An int8 graph was quantized and judged on the same photos (kept or not, it is reported).
    assert metrics["int8_accepted"] in (0.0, 1.0)
    assert 0.0 <= metrics["int8_label_agreement"] <= 1.0
    head = client.get_metric_history(run.info.run_id, "head_loss")
    fine = client.get_metric_history(run.info.run_id, "fine_tune_val_accuracy")
    assert len(head) == 2 and [m.step for m in head] == [1, 2]
    assert len(fine) == 1 and fine[0].step == 3
    artifacts = {
        a.path
        for folder in ("dataset", "plots", "model")
        for a in client.list_artifacts(run.info.run_id, folder)
    }
    for path in (
        "dataset/report.json",
        "dataset/train.csv",
        "dataset/val.csv",
        "dataset/test.csv",
        "plots/confusion_matrix.png",
        "plots/roc_curve.png",
        "plots/training_curves.png",
        "plots/misclassified.png",
        "plots/heatmaps.png",
        "model/MLmodel",
    ):
        assert path in artifacts, path


def test_first_version_is_registered_and_promoted(tracking_uri, first_run):
    client = client_for(tracking_uri)
    version = client.get_model_version(REGISTERED_MODEL_NAME, first_run["version"])
    assert version.run_id == first_run["run_id"]
    assert version.current_stage == "Production"
    assert (
        client.get_model_version_by_alias(REGISTERED_MODEL_NAME, PRODUCTION_ALIAS).version
        == version.version
    )
    assert version.tags["gate.decision"] == "promoted"
    assert version.tags["gate.reason"] == "no Production version yet"


def test_production_model_predicts_in_a_fresh_process(tracking_uri, first_run, photos):
    image = next((photos / "grass").glob("*.jpg"))
    code = textwrap.dedent(f"""
        import base64, json, mlflow, pandas as pd
        model = mlflow.pyfunc.load_model("models:/{REGISTERED_MODEL_NAME}/Production")
        image = base64.b64encode(open({str(image)!r}, "rb").read()).decode()
        out = model.predict(pd.DataFrame({{"image": [image, "junk"]}}))
        print(json.dumps(out.to_dict("records")))
    """)
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=child_env(MLFLOW_TRACKING_URI=tracking_uri),
        timeout=300,
        cwd="/",
    )  # not the repo: the model must bring its own code
    assert result.returncode == 0, result.stderr[-2000:]
    rows = json.loads(result.stdout.strip().splitlines()[-1])
    assert rows[0]["label"] in ("dandelion", "grass") and rows[0]["error"] is None
    assert sum(rows[0]["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    assert rows[0]["run_id"] == first_run["run_id"]
    assert rows[1]["error"] and rows[1]["label"] is None


def test_skip_then_promote_entry_point_moves_production(tracking_uri, first_run, photos):
    client = client_for(tracking_uri)
    skipped = mlflow_run(tracking_uri, "-P", f"data_dir={photos}", *SMALL, "-P", "promote=skip")
    assert skipped.returncode == 0, skipped.stderr[-2000:]
    second = summary_of(skipped)["version"]
    assert (
        client.get_model_version(REGISTERED_MODEL_NAME, second).tags["gate.decision"] == "skipped"
    )
    assert (
        client.get_model_version_by_alias(REGISTERED_MODEL_NAME, PRODUCTION_ALIAS).version
        == first_run["version"]
    )

    promoted = mlflow_run(tracking_uri, "-e", "promote", "-P", f"version={second}")
    assert promoted.returncode == 0, promoted.stderr[-2000:]
    assert client.get_model_version(REGISTERED_MODEL_NAME, second).current_stage == "Production"
    assert (
        client.get_model_version(REGISTERED_MODEL_NAME, first_run["version"]).current_stage
        == "Archived"
    )
    assert (
        client.get_model_version_by_alias(REGISTERED_MODEL_NAME, PRODUCTION_ALIAS).version == second
    )


def test_gate_compares_with_production_and_records_figures(tracking_uri, first_run, photos):
    result = mlflow_run(tracking_uri, "-P", f"data_dir={photos}", *SMALL)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = summary_of(result)
    tags = (
        client_for(tracking_uri).get_model_version(REGISTERED_MODEL_NAME, summary["version"]).tags
    )
    assert tags["gate.decision"] in ("promoted", "rejected")
    assert float(tags["gate.candidate_score"]) == pytest.approx(
        summary["metrics"]["test_balanced_accuracy"], abs=1e-6
    )
    assert 0.0 <= float(tags["gate.production_score"]) <= 1.0
    assert tags["gate.production_version"]
    production = client_for(tracking_uri).get_model_version_by_alias(
        REGISTERED_MODEL_NAME, PRODUCTION_ALIAS
    )
    expected_winner = (
        summary["version"]
        if tags["gate.decision"] == "promoted"
        else tags["gate.production_version"]
    )
    assert production.version == expected_winner


def test_import_keras_registers_an_existing_classifier(tracking_uri, photos, tmp_path):
    from keras import layers

    inputs = keras.Input((48, 48, 3))  # a float model trained on [-1, 1] pixels
    x = layers.GlobalAveragePooling2D()(layers.Conv2D(4, 3)(inputs))
    path = tmp_path / "legacy.keras"
    keras.Model(inputs, layers.Dense(2, activation="softmax")(x)).save(path)
    result = mlflow_run(
        tracking_uri,
        "-e",
        "import_keras",
        "-P",
        f"keras_path={path}",
        "-P",
        f"data_dir={photos}",
        "-P",
        "promote=skip",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    summary = summary_of(result)
    client = client_for(tracking_uri)
    version = client.get_model_version(REGISTERED_MODEL_NAME, summary["version"])
    assert version.tags["gate.decision"] == "skipped"
    run = client.get_run(version.run_id)
    assert run.data.params["image_size"] == "48" and "test_accuracy" in run.data.metrics


def test_bad_parameters_fail_with_one_clear_line(tracking_uri, photos):
    result = mlflow_run(tracking_uri, "-P", f"data_dir={photos}", "-P", "image_size=7")
    assert result.returncode != 0
    assert "florisense: error: image_size must be between 32 and 512" in result.stderr
    assert "Traceback" not in result.stderr.split("florisense: error")[0][-500:]
    missing = mlflow_run(tracking_uri, "-e", "import_keras", "-P", "keras_path=/nope.keras")
    assert "florisense: error: Keras model file not found" in missing.stderr


def test_runs_without_a_tracking_server(tmp_path, photos):
    result = mlflow_run(None, "-P", f"data_dir={photos}", *SMALL, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert summary_of(result)["gate"]["decision"] == "promoted"


def test_the_registered_model_predicts_in_its_own_environment_without_tensorflow(
    tracking_uri, first_run, photos, tmp_path
):
    """`mlflow models predict --env-manager uv` builds the model's environment from its own
    requirements, as a user's serving machine would: no TensorFlow, no Keras, and it predicts."""
    image = next((photos / "dandelion").glob("*.jpg"))
    request = tmp_path / "request.json"
    request.write_text(json.dumps(records_of([image])))
    output = tmp_path / "predictions.json"
    env = child_env(MLFLOW_TRACKING_URI=tracking_uri)
    model_uri = f"models:/florisense/{first_run['version']}"
    result = subprocess.run(
        [
            *(str(BIN / "mlflow"), "models", "predict", "-m", model_uri, "-i", str(request)),
            *("-o", str(output), "-t", "json", "--env-manager", "uv"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads(output.read_text())["predictions"]
    assert rows[0]["label"] in ("dandelion", "grass") and rows[0]["error"] is None
    # uv lists what it installed in the model's environment ("+ name==version").
    installed = {line.split()[1].split("==")[0] for line in result.stderr.splitlines()
                 if line.startswith(" + ")}  # fmt: skip
    assert {"onnxruntime", "mlflow-skinny", "pillow"} <= installed, sorted(installed)
    assert not {"tensorflow", "tensorflow-cpu", "keras"} & installed, sorted(installed)


def records_of(paths: list[Path]) -> dict:
    return {
        "dataframe_records": [
            {"image": base64.b64encode(path.read_bytes()).decode()} for path in paths
        ]
    }
