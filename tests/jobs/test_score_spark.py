"""The Spark job scores a Parquet input through ``mlflow.pyfunc.spark_udf`` on @champion, row for row as the CLI does."""

import pandas as pd
import pytest
from helpers import FIXTURES, read_jsonl

from star_scorer.io import OUTPUT_COLUMNS, frame_to_rows
from star_scorer.jobs import score, score_spark

CHAMPION = "models:/star-scorer@champion"


def answers_frame() -> pd.DataFrame:
    """Four fixture answers, an empty one, and one without an id (it gets its row number, 5)."""
    records = read_jsonl(FIXTURES / "answers.jsonl")
    rows = [{"id": r["id"], "question": r["question"], "answer": r["answer"]} for r in records[:4]]
    rows.append({"id": "empty", "question": "q", "answer": ""})
    rows.append({"id": None, "question": records[4]["question"], "answer": records[4]["answer"]})
    return pd.DataFrame(rows, columns=["id", "question", "answer"])


def test_spark_job_scores_the_same_rows_as_the_cli(trained, tmp_path):
    src = tmp_path / "answers.parquet"
    answers_frame().to_parquet(src, index=False)
    spark_out, cli_out = tmp_path / "scored-spark", tmp_path / "scored-cli.parquet"

    # three ranges on one core: the rows come back in input order across partitions
    result = score_spark.run(str(src), str(spark_out), CHAMPION, master="local[1]", partitions=3)
    assert result == {"rows": 6, "errors": 1, "output": str(spark_out)}
    assert spark_out.is_dir() and (spark_out / "_SUCCESS").exists()
    score.main(["--input", str(src), "--output", str(cli_out), "--model", CHAMPION, "--no-progress"])

    got_frame, want_frame = pd.read_parquet(spark_out), pd.read_parquet(cli_out)
    assert list(got_frame.columns) == list(OUTPUT_COLUMNS)
    got, want = frame_to_rows(got_frame), frame_to_rows(want_frame)
    assert [r["id"] for r in got] == ["fx-0001", "fx-0002", "fx-0003", "fx-0004", "empty", "5"]
    assert [r["id"] for r in want] == [r["id"] for r in got]
    assert got == want  # "model" too: the version @champion names, as the CLI records it
    assert {r["model"] for r in got} == {"star-scorer v1"}
    assert "empty string" in got[4]["error"]
    assert all(r["error"] is None and r["sections"] for i, r in enumerate(got) if i != 4)


def test_spark_job_refuses_an_existing_output_before_starting_spark(tmp_path, monkeypatch):
    src = tmp_path / "answers.parquet"
    answers_frame().to_parquet(src, index=False)
    out = tmp_path / "scored"
    out.mkdir()
    (out / "part-00000.parquet").write_bytes(b"keep me")

    def no_spark(master):
        raise AssertionError("Spark started for a run that must be refused")

    monkeypatch.setattr(score_spark, "spark_session", no_spark)
    with pytest.raises(FileExistsError, match=r"expected OUT not to exist .*found a folder at .*scored"):
        score_spark.main(["--input", str(src), "--output", str(out)])
    assert (out / "part-00000.parquet").read_bytes() == b"keep me"


def test_spark_job_asks_for_java_when_there_is_none(tmp_path, monkeypatch):
    src = tmp_path / "answers.parquet"
    answers_frame().to_parquet(src, index=False)
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setattr(score_spark.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match=r"expected a Java runtime .* run `make java`"):
        score_spark.run(str(src), str(tmp_path / "scored"), CHAMPION, master="local[1]")
