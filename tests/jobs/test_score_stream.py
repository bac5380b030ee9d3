"""Batch scoring at any size: chunked reading, resumable writing (a real SIGKILL), error rows and the published schema."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pandas as pd
import pytest
import torch
from helpers import FIXTURES, read_jsonl

from star_scorer import io
from star_scorer.jobs import score
from star_scorer.scorer import SCHEMA_PATH, StarScorer

FORMATS = [".jsonl", ".csv", ".parquet"]


def _answers(n: int) -> list[dict]:
    records = read_jsonl(FIXTURES / "answers.jsonl")
    return [{"id": f"r{i:04d}", "answer": records[i % len(records)]["answer"]} for i in range(n)]


def _write(rows: list[dict], path: Path) -> Path:
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif path.suffix == ".csv":
        pd.DataFrame(rows).to_csv(path, index=False)
    else:
        pd.DataFrame(rows).to_parquet(path, index=False)
    return path


@pytest.fixture()
def model_dir(trained) -> str:
    root, _ = trained
    return str(root / "models" / "tiny")


@pytest.mark.parametrize("ext", FORMATS)
def test_chunks_read_every_row_once_from_any_start(tmp_path, ext):
    rows = _answers(11)
    src = _write(rows, tmp_path / f"in{ext}")
    assert [r["id"] for c in io.iter_row_chunks(src, chunk_rows=4) for r in c] == [r["id"] for r in rows]
    assert [len(c) for c in io.iter_row_chunks(src, chunk_rows=4)] == [4, 4, 3]
    assert [[r["id"] for r in c] for c in io.iter_row_chunks(src, chunk_rows=4, start=8)] == [["r0008", "r0009", "r0010"]]
    assert list(io.iter_row_chunks(src, chunk_rows=4, start=11)) == []


@pytest.mark.parametrize("ext", FORMATS)
def test_a_run_killed_with_sigkill_resumes_to_the_same_bytes(model_dir, tmp_path, ext):
    src = _write(_answers(240), tmp_path / f"in{ext}")
    whole, killed = tmp_path / f"whole{ext}", tmp_path / f"killed{ext}"
    score.run(str(src), str(whole), model_dir, progress=False, chunk_rows=3)

    argv = [sys.executable, "-m", "star_scorer.jobs.score", "--input", str(src), "--output", str(killed), "--model", model_dir,
            "--chunk-rows", "3", "--no-progress"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    progress = killed.with_name(killed.name + ".progress.json")
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            if json.loads(progress.read_text())["rows"] >= 30:
                break
        except (FileNotFoundError, json.JSONDecodeError):
            pass
        time.sleep(0.005)
    assert proc.poll() is None, "the run finished before it could be killed: give it more rows"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not killed.exists() and progress.exists()
    done = json.loads(progress.read_text())["rows"]
    assert 30 <= done < 240

    with pytest.raises(FileExistsError, match="pass --resume"):
        score.run(str(src), str(killed), model_dir, progress=False, chunk_rows=3)
    with pytest.raises(ValueError, match="expected the interrupted run's chunk_rows 3, found 5"):
        score.run(str(src), str(killed), model_dir, progress=False, resume=True, chunk_rows=5)
    result = score.main(["--input", str(src), "--output", str(killed), "--model", model_dir, "--chunk-rows", "3", "--resume", "--no-progress"])
    assert result["resumed_from"] == done and result["rows"] == 240
    assert killed.read_bytes() == whole.read_bytes()
    assert sorted(p.name for p in tmp_path.glob("[!m]*")) == sorted([f"in{ext}", f"whole{ext}", f"killed{ext}"])  # no leftovers


def test_an_existing_output_is_refused_and_a_finished_one_is_left_alone(model_dir, tmp_path):
    src = _write(_answers(2), tmp_path / "in.jsonl")
    out = tmp_path / "out.jsonl"
    out.write_text("somebody's earlier results\n")
    with pytest.raises(FileExistsError, match="expected no file at .*out.jsonl.*found one"):
        score.main(["--input", str(src), "--output", str(out), "--model", model_dir, "--no-progress"])
    assert score.run(str(src), str(out), model_dir, progress=False, resume=True)["complete"]
    assert out.read_text() == "somebody's earlier results\n"


def test_bad_rows_get_error_rows_and_the_run_goes_on(model_dir, tmp_path):
    good = _answers(2)
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps(good[0]) + "\nnot json\n[1, 2]\n" + json.dumps({"id": "huge", "answer": "word " * 20_000}) + "\n"
                   + json.dumps(good[1]) + "\n")
    out = tmp_path / "out.jsonl"
    result = score.run(str(src), str(out), model_dir, progress=False, chunk_rows=2)
    rows = read_jsonl(out)
    assert [r["id"] for r in rows] == ["r0000", 1, 2, "huge", "r0001"] and result["errors"] == 3
    assert "line 2: expected a JSON object, found invalid JSON" in rows[1]["error"]
    assert "line 3: expected a JSON object, found list" in rows[2]["error"]
    assert "expected an answer of at most 5,000 words" in rows[3]["error"] and "found 20,000 words" in rows[3]["error"]
    assert rows[0]["error"] is None and rows[4]["error"] is None and rows[4]["sections"]


def test_a_failing_batch_is_retried_row_by_row_that_batch_alone(trained, monkeypatch):
    root, _ = trained
    scorer = StarScorer.load(root / "models" / "tiny")
    rows = [{"id": str(i), "answer": f"I fixed build number {i}. It passed."} for i in range(6)]
    rows[4]["answer"] = "POISON: I fixed it. It passed."
    forward = scorer._forward
    sizes = []

    def failing(inputs, *texts):
        sizes.append(len(inputs))
        if any(inp["window_input_ids"][0][1] == scorer.tokenizer.convert_tokens_to_ids("poison") for inp in inputs):
            raise RuntimeError("kernel fault")
        return forward(inputs, *texts)

    monkeypatch.setattr(scorer, "_forward", failing)
    out = scorer.score_rows(rows, max_windows=2)
    assert [r["id"] for r in out] == [str(i) for i in range(6)]
    assert out[4]["error"] == "scoring failed: RuntimeError: kernel fault"
    assert all(r["error"] is None and r["sections"] for i, r in enumerate(out) if i != 4)
    assert sizes.count(2) == 3 and sizes.count(1) == 2  # three batches of two; only the failing one again one by one


def test_threaded_batches_give_the_rows_one_worker_gives_in_input_order(trained):
    root, _ = trained
    rows = _answers(24)
    one = StarScorer.load(root / "models" / "tiny")
    one.workers = 1
    two = StarScorer.load(root / "models" / "tiny")
    two.workers = 2
    threads = torch.get_num_threads()
    assert two.score_rows(rows, max_windows=3) == one.score_rows(rows, max_windows=3)
    assert torch.get_num_threads() == threads  # the intra-op thread count is put back


@pytest.mark.parametrize("ext", FORMATS)
def test_every_output_row_follows_the_published_schema(model_dir, tmp_path, ext):
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    rows = _answers(4) + [{"id": "empty", "answer": ""}, {"id": "we", "answer": "We had a slow job. We rewrote it. We shipped it."}]
    src, out = _write(rows, tmp_path / f"in{ext}"), tmp_path / f"out{ext}"
    score.run(str(src), str(out), model_dir, progress=False)
    got = read_jsonl(out) if ext == ".jsonl" else io.frame_to_rows(pd.read_csv(out, dtype=str, keep_default_na=False)
                                                                     if ext == ".csv" else pd.read_parquet(out))
    for row in got:
        jsonschema.validate(row, schema)
    assert got[0]["model"] == "tiny" and got[0]["schema_version"] == "2" and got[0]["score_rule"]
    assert got[4]["error"] and got[4]["result_quality"] is None
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(got[0] | {"feedback": [{"code": "made_up", "text": "x", "span": None}]}, schema)


def test_no_model_named_scores_with_the_registered_champion(trained, tmp_path, monkeypatch):
    """``make score`` without MODEL= takes the version @champion points at, not the newest folder under models/
    (a model just trained but kept out by the promotion rule); with no store it falls back and creates none."""
    src = _write(_answers(3), tmp_path / "in.jsonl")
    assert score.default_model() == "models:/star-scorer/1"  # the session's tiny model, the store's first champion
    score.run(str(src), str(tmp_path / "out.jsonl"), progress=False)
    assert {r["model"] for r in read_jsonl(tmp_path / "out.jsonl")} == {"star-scorer v1"}
    absent = tmp_path / "none" / "mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{absent}")
    assert score.default_model() is None and not absent.exists()
