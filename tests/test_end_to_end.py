"""train -> score -> evaluate through the real CLI entrypoints, with a real SQLite MLflow store."""

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
from conftest import FIXTURES, read_jsonl, write_second

from pipeline import evaluate, score, train
from pipeline.data import segment_spans
from pipeline.paths import CONFIGS_DIR


@pytest.fixture()
def trained(tmp_path, tiny_base, tracking_uri):
    summary = train.main([
        "--config", str(CONFIGS_DIR / "default.yaml"),
        "--base_model", str(tiny_base),
        "--train_file", str(FIXTURES / "answers.jsonl"),
        "--dev_file", str(FIXTURES / "answers.jsonl"),
        "--augment", "transcript,drop",
        "--augment_fraction", "0.5",
        "--max_length", "64", "--stride", "16",
        "--max_steps", "2", "--per_device_train_batch_size", "32",  # one step an epoch
        "--eval_strategy", "epoch", "--save_strategy", "epoch", "--load_best_model_at_end", "true",
        "--head_refit_epochs", "2", "--refit_augment_fraction", "0.5",
        "--models_dir", str(tmp_path / "models"),
        "--reports_dir", str(tmp_path / "reports"),
        "--output_dir", str(tmp_path / "runs"),
        "--model_name", "tiny",
    ])
    return tmp_path, summary


def test_train_saves_tracks_and_registers(trained, tracking_uri):
    tmp_path, summary = trained
    model_dir = tmp_path / "models" / "tiny"
    for name in ("model.safetensors", "scorer_config.json", "tokenizer.json", "resolved_config.yaml", "train_summary.json"):
        assert (model_dir / name).exists(), name
    cfg = json.loads((model_dir / "scorer_config.json").read_text())
    assert cfg["id2label"] == {"0": "SITUATION", "1": "TASK", "2": "ACTION", "3": "RESULT", "4": "OTHER"}
    assert cfg["training"]["training"]["max_steps"] == 2
    metrics = json.loads((tmp_path / "reports" / "tiny" / "dev" / "metrics.json").read_text())
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
    assert client.get_model_version_by_alias("star-scorer", "champion").version in (1, "1")

    pyfunc = mlflow.pyfunc.load_model("models:/star-scorer@champion")
    out = pyfunc.predict(pd.DataFrame({"answer": ["We shipped the fix. Errors fell by half.", "   "]}))
    assert list(out.columns) == ["id", "sections", "result_quality", "missing_sections", "error"]
    assert out["error"].tolist()[0] == "" and "empty" in out["error"].tolist()[1]
    assert json.loads(out["sections"][0])[0]["start"] == 0


def test_score_cli_writes_one_row_per_input_in_order(trained, tmp_path):
    root, _ = trained
    records = read_jsonl(FIXTURES / "answers.jsonl")
    rows = [{"id": r["id"], "answer": r["answer"]} for r in records[:3]]
    rows += [{"id": "empty", "answer": ""}, {"id": "number", "answer": 7}, {"question": "no answer, no id"}]
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = tmp_path / "out.jsonl"
    result = score.main(["--input", str(src), "--output", str(out), "--model", str(root / "models" / "tiny"), "--no-progress"])
    assert result == {"rows": 6, "errors": 3, "output": str(out)}
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
        score.read_rows(tmp_path / "answers.txt")


def test_evaluate_cli_writes_report_and_logs_it(trained, tmp_path, tracking_uri):
    root, _ = trained
    out_dir = tmp_path / "eval"
    result = evaluate.main(
        ["--data", str(FIXTURES / "answers.jsonl"), "--model", str(root / "models" / "tiny"), "--out", str(out_dir), "--no-baselines"]
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
    from pipeline.data import load_jsonl

    root, _ = trained
    records = load_jsonl(FIXTURES / "answers.jsonl")
    data = tmp_path / "answers.jsonl"
    data.write_text((FIXTURES / "answers.jsonl").read_text())
    (tmp_path / "second_labels" / "answers").mkdir(parents=True)
    write_second(tmp_path / "second_labels" / "answers" / "p1.txt", records, relabel={("fx-0001", 1): "SITUATION"})
    out_dir = tmp_path / "eval"
    evaluate.main(["--data", str(data), "--model", str(root / "models" / "tiny"), "--out", str(out_dir), "--no-baselines", "--no-mlflow"])
    human = json.loads((out_dir / "metrics.json").read_text())["human_agreement"]
    assert human["per_label_f1"]["TASK"] < 1.0 and human["qwk"] == pytest.approx(1.0)
    assert "| a second annotator against the gold labels" in (out_dir / "report.md").read_text()
    # no second labels beside the data: no such row
    evaluate.main(["--data", str(FIXTURES / "answers.jsonl"), "--model", str(root / "models" / "tiny"), "--out", str(tmp_path / "e2"),
                   "--no-baselines", "--no-mlflow"])
    assert json.loads((tmp_path / "e2" / "metrics.json").read_text())["human_agreement"] is None


def test_seed_spread_over_models(trained, tmp_path, tracking_uri):
    from pipeline import seeds

    root, _ = trained
    model = str(root / "models" / "tiny")
    result = seeds.run(str(FIXTURES / "answers.jsonl"), [], [model, model], "configs/default.yaml", out_dir=tmp_path / "seeds")
    qwk = result["spread"]["qwk"]
    assert qwk["std"] == pytest.approx(0.0) and qwk["min"] == qwk["max"] == pytest.approx(qwk["mean"])
    assert {"f1_TASK", "fact_f1_T", "style=written.section_macro_f1", "within_one"} <= set(result["spread"])
    table = (tmp_path / "seeds" / "fixtures-answers.md").read_text()  # named like evaluate's reports: <folder>-<stem> outside data/
    assert "| section_macro_f1 |" in table
    exp = mlflow.MlflowClient(tracking_uri).get_experiment_by_name("star-scorer-seeds")
    assert mlflow.MlflowClient(tracking_uri).search_runs([exp.experiment_id])[0].data.metrics["qwk.mean"] == pytest.approx(qwk["mean"])
    with pytest.raises(ValueError, match="expected --seeds to train or --models"):
        seeds.run(str(FIXTURES / "answers.jsonl"), [], [], "configs/default.yaml", out_dir=tmp_path / "seeds")


def test_refit_probe_reproduces_the_heads_and_adds_stage_two_copies(trained, tmp_path, tracking_uri):
    from pipeline import refit_probe
    from pipeline.modeling import StarScorerModel
    from pipeline.predictor import StarScorer

    root, summary = trained
    model = root / "models" / "tiny"
    same = refit_probe.main(["--model", str(model), "--out", str(tmp_path / "same")])
    assert same["refit_examples"] == mlflow.MlflowClient(tracking_uri).get_run(summary["run_id"]).data.metrics["refit_examples"]
    text = read_jsonl(FIXTURES / "answers.jsonl")[0]["answer"]
    (_, (_, logp_a, cum_a, _)), = StarScorer.load(model).raw_outputs([text])
    (_, (_, logp_b, cum_b, _)), = StarScorer.load(tmp_path / "same").raw_outputs([text])
    # its own settings: its own heads. Exact on CPU; CUDA's atomic adds (unit pooling) are not bit-reproducible
    atol = 1e-3 if torch.cuda.is_available() else 1e-5
    assert np.allclose(logp_a, logp_b, atol=atol) and np.allclose(cum_a, cum_b, atol=atol)

    more = refit_probe.main(["--model", str(model), "--out", str(tmp_path / "more"), "--refit_augment_fraction", "1.0", "--epochs", "1"])
    assert more["refit_examples"] > same["refit_examples"] and more["refit_epochs"] == 1
    saved = json.loads((tmp_path / "more" / "scorer_config.json").read_text())["training"]
    assert saved["data"]["refit_augment_fraction"] == 1.0 and saved["model"]["head_refit_epochs"] == 1

    bare = StarScorerModel.from_pretrained(tmp_path / "same")
    bare.scorer_config.training = {}
    bare.save_pretrained(tmp_path / "bare")
    with pytest.raises(ValueError, match="expected a model saved by pipeline.train"):
        refit_probe.refit_probe(tmp_path / "bare", tmp_path / "x")


def test_recalibration_reproduces_the_training_time_choice(trained, tracking_uri):
    from pipeline import calibrate

    root, _ = trained
    model = root / "models" / "tiny"
    before = json.loads((model / "scorer_config.json").read_text())
    result = calibrate.main(["--model", str(model), "--register", "star-scorer"])
    assert result["version"] == 2 and mlflow.MlflowClient(tracking_uri).get_model_version_by_alias("star-scorer", "champion").version in (2, "2")
    after = json.loads((model / "scorer_config.json").read_text())
    decoding = ("switch_penalty", "clause_penalty", "sentence_penalty", "connective_penalty", "label_bias", "evidence_extend")
    assert after["connective_penalty"] in calibrate.CONNECTIVE and result["best"]["connective"] == after["connective_penalty"]
    assert {k: after[k] for k in decoding} == {k: before[k] for k in decoding}  # same start, same search: same choice
    assert json.loads((model / "decoding_calibration.json").read_text())["tried"]


def test_configs_all_load():
    for path in sorted(Path(CONFIGS_DIR).glob("*.yaml")):
        model_args, data_args, run_args, training_args = train.parse(["--config", str(path)])
        assert model_args.max_length <= 512 and training_args.metric_for_best_model == "combined"


def test_config_with_unknown_key_is_rejected(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("learning_rate: 1.0e-4\nlerning_rate: 2\n")
    with pytest.raises(ValueError, match=r"found unknown \['lerning_rate'\]"):
        train.parse(["--config", str(bad)])


@pytest.mark.slow
def test_short_run_on_the_real_base_model(tmp_path, tracking_uri):
    summary = train.main([
        "--config", str(CONFIGS_DIR / "default.yaml"),
        "--train_file", str(FIXTURES / "answers.jsonl"), "--dev_file", str(FIXTURES / "answers.jsonl"),
        "--max_steps", "3", "--models_dir", str(tmp_path / "models"), "--reports_dir", str(tmp_path / "reports"),
        "--output_dir", str(tmp_path / "runs"), "--model_name", "real",
    ])
    assert summary["dev_section_macro_f1"] > 0.0


def test_robustness_harness_on_a_tiny_model(trained):
    from pipeline import robustness

    root, _ = trained
    result = robustness.run(str(FIXTURES / "answers.jsonl"), str(root / "models" / "tiny"))
    figures = result["figures"]
    assert set(figures) == {"markers", "transcript", "fillers", "reorder", "result_removed", "result_vague", "result_padded", "number_removed"}
    assert figures["transcript"]["answers"] == 7  # fx-0003 is already a lowercase transcript
    for name in ("transcript", "fillers"):
        assert 0.0 <= figures[name]["labels_kept"] <= 1.0 and 0.0 <= figures[name]["score_within_one"] <= 1.0
    assert figures["result_removed"]["answers"] == 7
    assert figures["result_padded"]["answers"] <= 7 and 0.0 <= figures["result_padded"]["score_changed"] <= 1.0
    assert figures["number_removed"]["answers"] == 2  # the two fixtures whose NB clauses have a rewrite without the number
    assert set(result["checks"]) and isinstance(result["all_pass"], bool)


def test_labels_kept_is_one_for_identical_predictions_and_drops_when_they_change(records):
    from pipeline.robustness import labels_kept

    rec = records[0]
    spans = [{"label": s["label"], "start": a.start, "end": a.end} for s, a in zip(rec["segments"], segment_spans(rec["segments"]))]
    same = {"sections": spans}
    new = dict(rec, segments=[dict(s, src=i) for i, s in enumerate(rec["segments"])])
    kept, total = labels_kept(rec, same, new, same)
    assert kept == total > 0
    all_other = {"sections": [{"label": "OTHER", "start": 0, "end": len(rec["answer"])}]}
    kept, total = labels_kept(rec, same, new, all_other)
    assert kept == 0


def test_benchmark_times_each_device_against_the_first(trained, tmp_path):
    from pipeline import benchmark

    root, _ = trained
    src = tmp_path / "in.jsonl"
    rows = [{"id": r["id"], "answer": r["answer"]} for r in read_jsonl(FIXTURES / "answers.jsonl")[:4]] + [{"id": "bad", "answer": ""}]
    src.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = tmp_path / "bench.json"
    report = benchmark.main(["--data", str(src), "--model", str(root / "models" / "tiny"), "--devices", "cpu", "cpu",
                             "--repeats", "1", "--out", str(out)])
    assert report["answers"] == 4 and report["rows"] == 5  # the empty row is scored (as an error), not timed as an answer
    base = report["devices"]["cpu"]
    assert base["forward_speedup"] == 1.0 and base["score_speedup"] == 1.0 and base["forward_answers_per_s"] > 0
    assert json.loads(out.read_text()) == report
    with pytest.raises(ValueError, match="expected rows with non-empty 'answer' text"):
        benchmark.benchmark(str(root / "models" / "tiny"), [{"answer": " "}], ["cpu"])
