"""Batch scoring on Spark: ``python -m star_scorer.jobs.score_spark --input IN --output OUT [--model URI] [--master local[*]] [--partitions N]``.

The same rows as ``star_scorer.jobs.score``, from the registered model through
``mlflow.pyfunc.spark_udf`` (``--model`` defaults to ``models:/star-scorer@champion``;
any ``models:/`` or ``runs:/`` URI works). ``--input`` is a Parquet file or a folder
of Parquet files with an ``answer`` column (``id`` and ``question`` optional; a
missing column is fine). Input order is the files in path order, each file's rows in
order; a row without an id gets its number in that order (0-based, as the CLI does).
``--output`` is a Parquet dataset (a folder, one ``part-*`` file per partition, in
input order when read back in file-name order) with the string columns of
``star_scorer.io.OUTPUT_COLUMNS``; ``star_scorer.io.frame_to_rows`` turns it back into
scored rows. ``model`` names the model as the CLI does (``star-scorer v3`` for a
registered one, an alias resolved on the driver). A row whose answer is empty or missing gets ``error`` set and the run
goes on; an ``answer`` column that is not text (all null aside) is refused up front, as
is a model logged without this library's output columns. An existing OUT is refused,
never overwritten.

Needs a Java runtime (``make java``) and pyspark in the venv. The Python workers run
this interpreter (``PYSPARK_PYTHON`` when unset) and load the model with
``env_manager="local"``, so every worker needs the venv's packages. Each scoring task
gets ``spark.task.cpus`` torch threads (Spark sets ``OMP_NUM_THREADS``); ``--partitions``
(default: Spark's default parallelism) is how many tasks score at once.

On a cluster, point ``--master`` at it and use paths every node can read and write::

    MLFLOW_TRACKING_URI=http://mlflow.internal:5000 python -m star_scorer.jobs.score_spark \\
        --master spark://host:7077 --input hdfs:///answers/ --output hdfs:///scored/2026-12-06 \\
        --model models:/star-scorer@champion --partitions 64
    # or --master yarn (HADOOP_CONF_DIR set)

The model URI is resolved and downloaded on the driver, which then ships the model to
the executors: the driver must reach the tracking store (an MLflow tracking server via
``MLFLOW_TRACKING_URI``, or a ``runs:/`` / ``models:/`` URI whose store and artifacts
sit on storage the driver can read; the default ``sqlite:///mlflow.db`` only works
where the driver runs in this checkout).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
from pathlib import Path
from urllib.parse import urlparse

from star_scorer.io import OUTPUT_COLUMNS
from star_scorer.paths import MODEL_ENV, REGISTERED_MODEL_NAME

logger = logging.getLogger(__name__)

DEFAULT_MODEL = f"models:/{REGISTERED_MODEL_NAME}@champion"
INPUT_COLUMNS = ("id", "question", "answer")
INDEX, FILE, POSITION = "__row_index", "__file_path", "__file_row"


def _local_path(uri: str) -> Path | None:
    """``uri`` as a local path, or None for a remote one (hdfs://, s3a://, ...)."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file") or len(parsed.scheme) == 1:  # a Windows drive letter reads as a scheme
        return Path(parsed.path if parsed.scheme == "file" else uri)
    return None


def check_paths(input_path: str, output_path: str) -> None:
    """Fail before Spark starts: a local input that is not there, or an output that already is."""
    out = _local_path(output_path)
    if out is not None and out.exists():
        kind = "folder" if out.is_dir() else "file"
        raise FileExistsError(f"expected OUT not to exist (the Spark job never overwrites), found a {kind} at {out}; remove it or pick another")
    src = _local_path(input_path)
    if src is not None and not src.exists():
        raise FileNotFoundError(f"expected a Parquet file or folder at {src}, found nothing there")


def check_java() -> str:
    """The java binary Spark will start, or a message saying how to get one."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return str(Path(java_home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        detail = f"JAVA_HOME={java_home!r} has no bin/java and " if java_home else ""
        raise RuntimeError(f"expected a Java runtime for Spark (java on PATH or JAVA_HOME), found none ({detail}no java on PATH); run `make java`")
    return found


def spark_session(master: str):
    """A local or cluster session for scoring, its Python workers on this interpreter."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    return (
        SparkSession.builder.master(master)
        .appName("star-scorer-score-spark")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )


def result_type():
    """The pyfunc's output frame as a Spark struct: every column a string (nested fields are JSON)."""
    from pyspark.sql.types import StringType, StructField, StructType

    return StructType([StructField(name, StringType()) for name in OUTPUT_COLUMNS])


def check_outputs(model: str, schema) -> None:
    """Fail on the driver, before any task runs, when the model's logged output lacks columns this job writes."""
    if schema is None or not schema.has_input_names():
        return  # no signature: the tasks will say what is missing
    missing = [name for name in OUTPUT_COLUMNS if name not in schema.input_names()]
    if missing:
        raise ValueError(
            f"{model}: expected a model whose output has the columns {list(OUTPUT_COLUMNS)}, found {schema.input_names()} "
            f"(missing {missing}: logged by an older star_scorer; register the model again with star_scorer.jobs.register)"
        )


def indexed_input(spark, input_path: str):
    """The input with ``INDEX``: each row's number in input order (files in path order, rows in file order).

    Counted from Parquet metadata (file path, row index in the file) rather than from
    Spark's partition order, which packs files by size. A missing ``id`` becomes that number.
    """
    from pyspark.sql import functions as F

    frame = spark.read.option("mergeSchema", "true").parquet(input_path)
    columns = {f.name: f.dataType.simpleString() for f in frame.schema.fields}
    if "answer" not in columns:
        raise ValueError(f"{input_path}: expected an 'answer' column (optional 'id', 'question'), found {sorted(columns)}")
    if columns["answer"] != "string" and frame.where(F.col("answer").isNotNull()).limit(1).count():
        raise ValueError(f"{input_path}: expected 'answer' to be a string column, found {columns['answer']}")
    frame = frame.select(
        *[F.col(c) for c in INPUT_COLUMNS if c in columns],
        F.col("_metadata.file_path").alias(FILE),
        F.col("_metadata.row_index").alias(POSITION),
    )
    counts = sorted((r[FILE], r["count"]) for r in frame.groupBy(FILE).count().collect())
    offsets, total = [], 0
    for path, count in counts:
        offsets.append((path, total))
        total += count
    offset_frame = spark.createDataFrame(offsets or [("", 0)], f"{FILE} string, __offset long")
    frame = frame.join(F.broadcast(offset_frame), FILE).withColumn(INDEX, F.col("__offset") + F.col(POSITION))
    ids = F.col(INDEX).cast("string")
    if "id" in columns:
        ids = F.coalesce(F.col("id").cast("string"), ids)
    out = [ids.alias("id")]
    if "question" in columns:
        out.append(F.col("question").cast("string").alias("question"))
    return frame.select(*out, F.col("answer").cast("string"), F.col(INDEX)), total  # a cast only when all are null


def score_frame(spark, frame, model: str, partitions: int):
    """Scored rows (``OUTPUT_COLUMNS``), sorted by ``INDEX`` before scoring so each partition is a run of input order."""
    import mlflow
    from pyspark.sql import functions as F

    from star_scorer.tracking import describe_model_uri, tracking_uri

    mlflow.set_tracking_uri(tracking_uri())
    mlflow.set_registry_uri(tracking_uri())
    # rows name the model as the CLI's do ("star-scorer v3"), not by the pyfunc's artifact folder. model_config is
    # the pyfunc's hook; extra_env too, since MLflow drops model_config where it ships the model to cluster executors
    label = describe_model_uri(model) if model.startswith(("models:/", "runs:/")) else None
    naming = {"model_config": {"model": label}, "extra_env": {MODEL_ENV: label}} if label else {}
    udf = mlflow.pyfunc.spark_udf(spark, model, result_type=result_type(), env_manager="local", **naming)
    check_outputs(model, udf.metadata.get_output_schema())
    inputs = [c for c in INPUT_COLUMNS if c in frame.columns]
    # sorting before the UDF, not after: a range sort samples its input, which would score every row twice
    ordered = frame.repartitionByRange(partitions, INDEX).sortWithinPartitions(INDEX)
    scored = ordered.select(udf(F.struct(*[F.col(c) for c in inputs])).alias("scored"))
    return scored.select(*[F.col(f"scored.{name}").alias(name) for name in OUTPUT_COLUMNS])


def run(input_path: str, output_path: str, model: str | None = None, master: str = "local[*]", partitions: int | None = None) -> dict:
    """Score ``input_path`` into the new Parquet folder ``output_path``: {"rows", "errors", "output"}.

    Uses the active SparkSession when there is one (``master`` is then ignored) and leaves
    it running; otherwise starts one on ``master`` and stops it at the end.
    """
    check_paths(input_path, output_path)
    model = model or DEFAULT_MODEL
    check_java()
    try:
        from pyspark.sql import SparkSession
    except ModuleNotFoundError as err:
        raise RuntimeError(f"expected pyspark in this environment ({sys.executable}), found none; pip install pyspark") from err

    created = SparkSession.getActiveSession() is None
    spark = spark_session(master)
    if not created and spark.sparkContext.master != master:
        logger.warning("using the active SparkSession on %s, not --master %s", spark.sparkContext.master, master)
    try:
        hadoop_path = spark._jvm.org.apache.hadoop.fs.Path(output_path)
        if hadoop_path.getFileSystem(spark._jsc.hadoopConfiguration()).exists(hadoop_path):
            raise FileExistsError(f"expected OUT not to exist (the Spark job never overwrites), found {output_path}; remove it or pick another")
        frame, total = indexed_input(spark, input_path)
        partitions = max(1, partitions or spark.sparkContext.defaultParallelism)
        logger.info("scoring %d rows from %s with %s in %d partitions on %s", total, input_path, model, partitions, spark.sparkContext.master)
        score_frame(spark, frame, model, partitions).write.mode("errorifexists").parquet(output_path)
        written = spark.read.parquet(output_path)
        rows, errors = written.count(), written.where("error != ''").count()
    finally:
        if created:
            spark.stop()
    logger.info("scored %d rows (%d with errors) -> %s", rows, errors, output_path)
    return {"rows": rows, "errors": errors, "output": str(output_path)}


def main(argv: list[str] | None = None) -> dict:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(description="Score a Parquet file or folder of interview answers on Spark with the registered model.")
    parser.add_argument("--input", required=True, help="a Parquet file or folder with an 'answer' column (optional 'id', 'question')")
    parser.add_argument("--output", required=True, help="a Parquet folder to create (refused if it exists)")
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"models:/ or runs:/ URI (default {DEFAULT_MODEL})")
    parser.add_argument("--master", default="local[*]", help="Spark master: local[*], spark://host:7077, yarn, ...")
    parser.add_argument("--partitions", type=int, default=None, help="scoring tasks (default: Spark's default parallelism)")
    args = parser.parse_args(argv)
    if args.partitions is not None and args.partitions < 1:
        parser.error(f"expected --partitions to be at least 1, found {args.partitions}")
    return run(args.input, args.output, args.model, args.master, args.partitions)


if __name__ == "__main__":
    main()
