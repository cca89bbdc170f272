"""Score every photo under a folder or an S3 prefix on Spark with a registered model, through
MLflow's own `mlflow.pyfunc.spark_udf`: the pyfunc's decoding, preprocessing and row errors apply
unchanged, on `local[*]` or any cluster (`--master`). Writes Parquet, one row per photo.

Spark reads the photos with its `binaryFile` source; each partition's photos reach the model as
one pandas frame of base64 strings, exactly what `/predict` receives. A corrupt file is a row with
an error, never a failed job."""

from __future__ import annotations

import os
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from florisense_model.cli import first_line
from florisense_model.photos import IMAGE_SUFFIXES

# MLflow 3.17's spark_udf turns a result column into the Spark type asked for; it fails on a null
# map (error rows have no probabilities: `'NoneType' object has no attribute 'items'`) and writes
# None as the text "None" in a string column that also holds text. So the model's answer comes
# back as text and is typed here: "None" -> null, the probabilities' dict -> map<string,double>.
UDF_RESULT = "label string, confidence double, probabilities string, error string, run_id string"
OUTPUT_COLUMNS = ("path", "label", "confidence", "probabilities", "error", "model_version",
                  "run_id", "model_uri")  # fmt: skip
# Rows per call of the model inside a task (Arrow batch): bounded memory for large photos.
ROWS_PER_BATCH = 64
# Reading s3:// needs Hadoop's S3A connector, which pyspark does not ship: fetched from Maven
# Central at start (the version of pyspark's own Hadoop client).
S3A_PACKAGE = "org.apache.hadoop:hadoop-aws:3.5.0"


class BatchScoringError(ValueError):
    """A problem with the job's inputs, said in one line (scripts print it without a trace)."""


@dataclass(frozen=True)
class ModelChoice:
    uri: str  # pinned: models:/name/N when the URI named a stage or an alias
    version: str | None  # None for runs:/ and folders


def resolve_model(model_uri: str, tracking_uri: str | None) -> ModelChoice:
    """Pin a stage or alias to its version now, so every row comes from one version even if
    Production moves during the job; a missing model or server is one clear line."""
    import mlflow
    from mlflow import MlflowClient

    from florisense_model.registry import version_of

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        found = version_of(client, model_uri)
        if found is None and model_uri.startswith("models:/"):
            raise BatchScoringError(f"no model version behind {model_uri}")
        uri = f"models:/{found[0]}/{found[1]}" if found else model_uri
        # Fails now, not in every Spark task, if the model is missing.
        classes = (mlflow.models.get_model_info(uri).metadata or {}).get("classes", [])
    except BatchScoringError:
        raise
    except Exception as exc:
        reason = first_line(getattr(exc, "message", None) or exc)
        raise BatchScoringError(f"cannot open the model {model_uri}: {reason}") from exc
    if any("'" in c or '"' in c for c in classes):  # the probabilities travel as text
        raise BatchScoringError(f"class names with quotes cannot be scored here: {classes}")
    return ModelChoice(uri, found[1] if found else None)


def spark_path(input_path: str) -> str:
    """A local folder or file (must exist), or s3://bucket/prefix (read as s3a://)."""
    if input_path.startswith(("s3://", "s3a://")):
        return "s3a://" + input_path.split("://", 1)[1]
    path = Path(input_path).expanduser()
    if not path.exists():
        raise BatchScoringError(f"no such file or folder: {input_path}")
    return str(path.resolve())


def session(master: str, reads_s3: bool) -> Any:
    """A Spark session; on a local master the executors' Python is this one (it has MLflow)."""
    from pyspark.sql import SparkSession

    builder = (
        SparkSession.builder.master(master)
        .appName("florisense-score-batch")
        .config("spark.ui.showConsoleProgress", "false")  # our own progress line instead
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", str(ROWS_PER_BATCH))
    )
    if master.startswith("local"):
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    if reads_s3:
        endpoint = os.environ.get("MLFLOW_S3_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL")
        builder = builder.config("spark.jars.packages", S3A_PACKAGE).config(
            "spark.hadoop.fs.s3a.aws.credentials.provider",
            "org.apache.hadoop.fs.s3a.auth.EnvironmentVariableCredentialsProvider",
        )
        if endpoint:  # the stack's S3 (MinIO, rclone): path-style addressing
            builder = builder.config("spark.hadoop.fs.s3a.endpoint", endpoint).config(
                "spark.hadoop.fs.s3a.path.style.access", "true"
            )
    try:
        spark = builder.getOrCreate()
    except Exception as exc:
        why = (
            f"reading s3:// needs Hadoop's S3A connector ({S3A_PACKAGE}), which Spark fetches "
            "from Maven Central at start: is it reachable?"
            if reads_s3
            else "is Java 17 installed (make system-deps)?"
        )
        raise BatchScoringError(f"Spark did not start: {why} ({_spark_error(exc)})") from exc
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def scored_frame(spark: Any, source: str, model: ModelChoice, env_manager: str) -> Any:
    """Every image under `source` (by suffix, any case, any depth) with the model's answer."""
    import mlflow
    from pyspark.sql import functions as F

    photos = _photos(spark, source)
    predict = mlflow.pyfunc.spark_udf(
        spark, model.uri, result_type=UDF_RESULT, env_manager=env_manager
    )
    answer = predict(F.struct(F.base64(F.col("content")).alias("image")))

    def text(field: str) -> Any:
        value = F.col("answer")[field]
        return F.when(value == "None", None).otherwise(value)

    probabilities = F.from_json(
        F.regexp_replace(text("probabilities"), "'", '"'), "map<string,double>"
    )
    return photos.select("path", answer.alias("answer")).select(
        "path",
        text("label").alias("label"),
        # An error row's confidence arrives as NaN (spark_udf casts the column to float): null.
        F.nanvl(F.col("answer")["confidence"], F.lit(None)).alias("confidence"),
        probabilities.alias("probabilities"),
        text("error").alias("error"),
        F.lit(model.version).cast("string").alias("model_version"),
        text("run_id").alias("run_id"),
        F.lit(model.uri).alias("model_uri"),
    )


def _photos(spark: Any, source: str) -> Any:
    """(path, content) of every image file under `source`. Spark's file scan skips files of 0
    bytes: they are added back with no content, so that the model answers them too (an error)."""
    from pyspark.sql import functions as F

    suffixes = "|".join(sorted(s.lstrip(".") for s in IMAGE_SUFFIXES))
    is_image = F.lower(F.col("path")).rlike(rf"\.({suffixes})$")
    files = spark.read.format("binaryFile").option("recursiveFileLookup", "true").load(source)
    scanned = files.where(is_image).select("path", "content")
    # The listing gives URIs (file:///x, with %-escapes: "a b" is "a%20b"); the scan's rows give
    # Hadoop paths (file:/x, unescaped).
    paths = [re.sub("^file:///", "file:/", unquote(uri)) for uri in files.inputFiles()]
    listed = spark.createDataFrame([(path,) for path in paths], "path string")
    empty = listed.where(is_image).join(scanned.select("path"), "path", "left_anti")
    return scanned.unionByName(empty.withColumn("content", F.lit(b"").cast("binary")))


class Progress:
    """One line every few seconds from Spark's status tracker: tasks done of the job's tasks."""

    def __init__(self, spark: Any, say: Callable[[str], None], every_s: float = 5.0) -> None:
        self._tracker, self._say, self._every = spark.sparkContext.statusTracker(), say, every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Progress:
        self._started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            stages = [self._tracker.getStageInfo(s) for s in self._tracker.getActiveStageIds()]
            done = sum(s.numCompletedTasks for s in stages if s)
            total = sum(s.numTasks for s in stages if s)
            elapsed = time.monotonic() - self._started
            self._say(f"scoring: {done} of {total} tasks done, {elapsed:.0f} s")


def score_batch(
    model_uri: str,
    input_path: str,
    output: str,
    master: str = "local[*]",
    env_manager: str = "local",
    tracking_uri: str | None = None,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """The whole job; returns its figures (rows, errors, seconds, images per second)."""
    source = spark_path(input_path)
    model = resolve_model(model_uri, tracking_uri or os.environ.get("MLFLOW_TRACKING_URI"))
    started = time.monotonic()
    spark = session(master, source.startswith("s3a://"))
    try:
        spark_ready = time.monotonic() - started
        say(f"Spark {spark.version} on {master} up in {spark_ready:.1f} s; scoring {input_path} "
            f"with {model.uri}")  # fmt: skip
        frame = scored_frame(spark, source, model, env_manager)
        try:
            with Progress(spark, say):
                frame.write.mode("overwrite").parquet(output)
        except Exception as exc:  # Spark's own error: its first line, not a Java trace
            raise BatchScoringError(f"the Spark job failed: {_spark_error(exc)}") from exc
        scoring = time.monotonic() - started - spark_ready
        # One pass over what was written: its rows, and those with an error.
        rows, errors = spark.read.parquet(output).selectExpr("count(*)", "count(error)").first()
    finally:
        spark.stop()
    figures = {
        "rows": rows,
        "errors": errors,
        "model_uri": model.uri,
        "model_version": model.version,
        "spark_start_s": round(spark_ready, 2),
        "scoring_s": round(scoring, 2),
        "images_per_s": round(rows / scoring, 1) if scoring > 0 else None,
        "output": output,
    }
    say(f"scored {rows} photos ({errors} with an error) in {scoring:.1f} s "
        f"({figures['images_per_s']} photos/s) -> {output}")  # fmt: skip
    return figures


def _spark_error(exc: Exception) -> str:
    """The line of a Spark error that names it (its Java and Python traces are long)."""
    lines = [line for line in str(exc).splitlines() if line.strip()]
    errors = [line for line in lines if "Error" in line or "Exception" in line]
    return (errors[-1] if errors else lines[0] if lines else type(exc).__name__)[:300]
