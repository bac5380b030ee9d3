"""train -> score -> evaluate through the real CLI entrypoints, with a real SQLite MLflow store."""

import json
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from helpers import FIXTURES, read_jsonl, write_second

from star_scorer import io
from star_scorer.jobs import evaluate, score, train
from star_scorer.paths import CONFIGS_DIR


def test_train_saves_tracks_and_registers(trained, tracking_uri, tmp_path):
    root, summary = trained
    model_dir = root / "models" / "tiny"
    for name in ("model.safetensors", "scorer_config.json", "tokenizer.json", "resolved_config.yaml", "train_summary.json"):
        assert (model_dir / name).exists(), name
    cfg = json.loads((model_dir / "scorer_config.json").read_text())
    assert cfg["id2label"] == {"0": "SITUATION", "1": "TASK", "2": "ACTION", "3": "RESULT", "4": "OTHER"}
    assert cfg["training"]["training"]["max_steps"] == 2
    metrics = json.loads((root / "reports" / "tiny" / "dev" / "metrics.json").read_text())
    assert 0.0 <= metrics["sections"]["macro_f1"] <= 1.0 and metrics["n_answers"] == 8

    client = mlflow.MlflowClient(tracking_uri)
    run = client.get_run(summary["run_id"])
    assert float(run.data.params["training.learning_rate"]) == train.parse(["--config", str(CONFIGS_DIR / "default.yaml")])[3].learning_rate
    history = client.get_metric_history(summary["run_id"], "eval_section_macro_f1")
    assert len(history) == 2  # evaluated after each of the two epochs
    # then each head set of the default config is refit for two epochs, one step count across them
    import yaml

    head_sets = yaml.safe_load((CONFIGS_DIR / "default.yaml").read_text())["head_sets"]
    assert cfg["head_sets"] == head_sets
    assert [m.step for m in client.get_metric_history(summary["run_id"], "refit_loss")] == list(range(2 * head_sets))
    assert run.data.metrics["refit_examples"] > 8  # on the 8 answers plus stage 2's own augmented copies
    artifacts = [a.path for a in client.list_artifacts(summary["run_id"], "dev_report")]
    assert "dev_report/metrics.json" in artifacts and "dev_report/confusion_sections.png" in artifacts
    # registered as @challenger; the first model of a store becomes @champion by the promotion rule
    assert client.get_model_version_by_alias("star-scorer", "challenger").version in (1, "1")
    assert client.get_model_version_by_alias("star-scorer", "champion").version in (1, "1")
    assert summary["promotion"] == {"promoted": True, "champion_before": None, "champion": 1,
                                    "reason": "the first model of the store becomes champion"}

    pyfunc = mlflow.pyfunc.load_model("models:/star-scorer@champion")
    out = pyfunc.predict(pd.DataFrame({"answer": ["We shipped the fix. Errors fell by half.", "   "]}))
    assert list(out.columns) == list(io.OUTPUT_COLUMNS)
    assert out["error"].tolist()[0] == "" and "empty" in out["error"].tolist()[1]
    assert json.loads(out["sections"][0])[0]["start"] == 0
    # the logged model ships the library alone: no jobs, research or data tools
    local = Path(mlflow.artifacts.download_artifacts("models:/star-scorer@champion", dst_path=str(tmp_path / "logged")))
    shipped = {p.relative_to(local).as_posix() for p in local.rglob("*.py")}
    assert "code/star_scorer/scorer.py" in shipped and "code/star_scorer/mlflow_model.py" in shipped
    assert not [p for p in shipped if p.startswith(("code/star_scorer/jobs", "code/star_scorer/research", "code/star_scorer/datatools"))]


def test_the_star_scorer_command_runs_each_job_by_name(trained, tmp_path, capsys):
    from star_scorer import cli

    root, _ = trained
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text(json.dumps({"id": "a", "answer": "We shipped the fix. Errors fell by half."}) + "\n")
    assert cli.main(["score", "--input", str(src), "--output", str(out), "--model", str(root / "models" / "tiny"), "--no-progress"]) == 0
    assert [r["id"] for r in read_jsonl(out)] == ["a"]
    assert cli.main(["scroe"]) == 2
    assert "expected a command among" in capsys.readouterr().err
    assert cli.main([]) == 0 and "score" in capsys.readouterr().out


def test_score_cli_writes_one_row_per_input_in_order(trained, tmp_path):
    root, _ = trained
    records = read_jsonl(FIXTURES / "answers.jsonl")
    rows = [{"id": r["id"], "answer": r["answer"]} for r in records[:3]]
    rows += [{"id": "empty", "answer": ""}, {"id": "number", "answer": 7}, {"question": "no answer, no id"}]
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = tmp_path / "out.jsonl"
    result = score.main(["--input", str(src), "--output", str(out), "--model", str(root / "models" / "tiny"), "--no-progress"])
    assert (result["rows"], result["errors"], result["output"], result["resumed_from"]) == (6, 3, str(out), 0)
    got = read_jsonl(out)
    assert [g["id"] for g in got] == ["fx-0001", "fx-0002", "fx-0003", "empty", "number", 5]
    for g, r in zip(got[:3], records[:3]):
        assert g["error"] is None
        non_space = {i for i, c in enumerate(r["answer"]) if not c.isspace()}
        covered = set()
        for a, b in zip(g["sections"], g["sections"][1:]):
            assert a["end"] <= b["start"]
        for s in g["sections"]:
            assert r["answer"][s["start"] : s["end"]] == s["text"]
            covered |= set(range(s["start"], s["end"]))
        assert non_space <= covered
        q = g["result_quality"]
        assert q["score"] in range(5) and len(q["probabilities"]) == 5 and set(q["facts"]) == {"T", "B", "NB", "V"}
        assert set(g["missing_sections"]) == {"SITUATION", "TASK", "ACTION", "RESULT"} - {s["label"] for s in g["sections"]}
    assert "empty string" in got[3]["error"] and "found int 7" in got[4]["error"] and "missing value" in got[5]["error"]


@pytest.mark.parametrize("ext", [".csv", ".parquet"])
def test_score_cli_reads_and_writes_csv_and_parquet(trained, tmp_path, ext):
    root, _ = trained
    frame = pd.DataFrame({"id": ["a", "b"], "question": ["q", "q"], "answer": ["I fixed the build. It passed.", ""]})
    src, out = tmp_path / f"in{ext}", tmp_path / f"out{ext}"
    frame.to_csv(src, index=False) if ext == ".csv" else frame.to_parquet(src)
    score.main(["--input", str(src), "--output", str(out), "--model", str(root / "models" / "tiny"), "--no-progress"])
    got = pd.read_csv(out) if ext == ".csv" else pd.read_parquet(out)
    assert got["id"].tolist() == ["a", "b"]
    assert json.loads(got["sections"][0])[0]["label"] in {"SITUATION", "TASK", "ACTION", "RESULT", "OTHER"}
    assert "empty" in got["error"][1]


def test_score_rejects_unknown_extension(tmp_path):
    with pytest.raises(ValueError, match=r"expected a file ending in one of .* found 'answers.txt'"):
        io.read_rows(tmp_path / "answers.txt")


def test_evaluate_cli_writes_report_and_logs_it(trained, tmp_path, tracking_uri):
    root, _ = trained
    out_dir = tmp_path / "eval"
    result = evaluate.main(
        ["--data", str(FIXTURES / "answers.jsonl"), "--model", str(root / "models" / "tiny"), "--out", str(out_dir)]
    )
    metrics = json.loads((out_dir / "metrics.json").read_text())
    assert set(metrics["sections"]["per_label"]) == {"SITUATION", "TASK", "ACTION", "RESULT", "OTHER"}
    assert metrics["result_quality"]["qwk"] == pytest.approx(result["qwk"])
    assert 0 <= metrics["result_quality"]["within_one"] <= 1
    assert (out_dir / "confusion_sections.png").stat().st_size > 1000
    assert "| RESULT |" in (out_dir / "report.md").read_text()
    exp = mlflow.MlflowClient(tracking_uri).get_experiment_by_name("star-scorer-evaluation")
    runs = mlflow.MlflowClient(tracking_uri).search_runs([exp.experiment_id])
    assert runs and runs[0].data.metrics["section_macro_f1"] == pytest.approx(result["section_macro_f1"])


def test_evaluate_shows_human_agreement_beside_the_model(trained, tmp_path):
    from star_scorer.data import load_jsonl

    root, _ = trained
    records = load_jsonl(FIXTURES / "answers.jsonl")
    data = tmp_path / "answers.jsonl"
    data.write_text((FIXTURES / "answers.jsonl").read_text())
    (tmp_path / "second_labels" / "answers").mkdir(parents=True)
    write_second(tmp_path / "second_labels" / "answers" / "p1.txt", records, relabel={("fx-0001", 1): "SITUATION"})
    out_dir = tmp_path / "eval"
    evaluate.main(["--data", str(data), "--model", str(root / "models" / "tiny"), "--out", str(out_dir), "--no-mlflow"])
    human = json.loads((out_dir / "metrics.json").read_text())["human_agreement"]
    assert human["per_label_f1"]["TASK"] < 1.0 and human["qwk"] == pytest.approx(1.0)
    assert "| a second annotator against the gold labels" in (out_dir / "report.md").read_text()
    # no second labels beside the data: no such row
    evaluate.main(["--data", str(FIXTURES / "answers.jsonl"), "--model", str(root / "models" / "tiny"), "--out", str(tmp_path / "e2"),
                   "--no-mlflow"])
    assert json.loads((tmp_path / "e2" / "metrics.json").read_text())["human_agreement"] is None


def test_recalibration_reproduces_the_training_time_choice(trained, tracking_uri):
    from star_scorer.jobs import calibrate

    root, _ = trained
    model = root / "models" / "tiny"
    before = json.loads((model / "scorer_config.json").read_text())
    result = calibrate.main(["--model", str(model), "--register", "star-scorer"])
    # registered as @challenger v2 and promoted: the same choice scores like v1, so it is not worse beyond the intervals
    assert result["version"] == 2 and result["alias"] == "challenger" and result["promotion"]["promoted"]
    assert mlflow.MlflowClient(tracking_uri, registry_uri=tracking_uri).get_model_version_by_alias("star-scorer", "champion").version in (2, "2")
    after = json.loads((model / "scorer_config.json").read_text())
    decoding = ("switch_penalty", "clause_penalty", "sentence_penalty", "connective_penalty", "label_bias", "evidence_extend")
    assert after["connective_penalty"] in calibrate.CONNECTIVE and result["best"]["connective"] == after["connective_penalty"]
    assert {k: after[k] for k in decoding} == {k: before[k] for k in decoding}  # same start, same search: same choice
    assert json.loads((model / "decoding_calibration.json").read_text())["tried"]


@pytest.mark.slow
def test_short_run_on_the_real_base_model(tmp_path, tracking_uri):
    summary = train.main([
        "--config", str(CONFIGS_DIR / "default.yaml"),
        "--train_file", str(FIXTURES / "answers.jsonl"), "--dev_file", str(FIXTURES / "answers.jsonl"),
        "--max_steps", "3", "--models_dir", str(tmp_path / "models"), "--reports_dir", str(tmp_path / "reports"),
        "--output_dir", str(tmp_path / "runs"), "--model_name", "real",
    ])
    assert summary["dev_section_macro_f1"] > 0.0


