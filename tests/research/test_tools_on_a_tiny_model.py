"""The research tools run on the session's tiny trained model (tests/conftest.py)."""

import json

import mlflow
import numpy as np
import pytest
import torch
from helpers import FIXTURES, read_jsonl

from star_scorer.data import segment_spans


def test_seed_spread_over_models(trained, tmp_path, tracking_uri):
    from star_scorer.research import seeds

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
    from star_scorer.modeling import StarScorerModel
    from star_scorer.research import refit_probe
    from star_scorer.scorer import StarScorer

    root, summary = trained
    model = root / "models" / "tiny"
    same = refit_probe.main(["--model", str(model), "--out", str(tmp_path / "same")])
    assert same["refit_examples"] == mlflow.MlflowClient(tracking_uri).get_run(summary["run_id"]).data.metrics["refit_examples"]
    text = read_jsonl(FIXTURES / "answers.jsonl")[0]["answer"]
    (_, (_, logp_a, cum_a, *_)), = StarScorer.load(model).raw_outputs([text])
    (_, (_, logp_b, cum_b, *_)), = StarScorer.load(tmp_path / "same").raw_outputs([text])
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
    with pytest.raises(ValueError, match="expected a model saved by star_scorer.jobs.train"):
        refit_probe.refit_probe(tmp_path / "bare", tmp_path / "x")


def test_robustness_harness_on_a_tiny_model(trained):
    from star_scorer.research import robustness

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
    from star_scorer.research.robustness import labels_kept

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
    from star_scorer.research import benchmark

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


def test_bench_times_the_naive_pipeline_and_the_scorer_and_measures_memory_by_rows(trained, tmp_path):
    from star_scorer.research import bench

    root, _ = trained
    report = bench.main(["--data", str(FIXTURES / "answers.jsonl"), "--model", str(root / "models" / "tiny"),
                         "--rss-rows", "10", "30", "--out", str(tmp_path / "bench.json")])
    assert set(report["answers_per_s"]) == {"naive", "scorer_fp32", "scorer"} and all(v > 0 for v in report["answers_per_s"].values())
    assert report["speedup"]["scorer"] == pytest.approx(report["answers_per_s"]["scorer"] / report["answers_per_s"]["naive"])
    assert [(m["rows"], m["output_rows"]) for m in report["rss"]] == [(10, 10), (30, 30)]
    assert all(100 < m["peak_rss_mb"] < 4000 for m in report["rss"])
    assert set(report["figures"]) == {"fp32", report["precision"]} and report["figures"]["fp32"]["section_macro_f1"] >= 0
    assert json.loads((tmp_path / "bench.json").read_text())["speedup"] == report["speedup"]
    assert set(report["matmul_gflops"]) == {"fp32", "bf16"} and all(v > 0 for v in report["matmul_gflops"].values())
    assert "this machine's matmul, one thread: fp32" in bench.render(report)


def test_precision_auto_is_bf16_only_where_the_cpu_multiplies_bf16(monkeypatch):
    import torch

    from star_scorer import scorer

    monkeypatch.setattr(scorer, "cpu_has_bf16", lambda: False)
    assert scorer.resolve_precision("auto", torch.device("cpu")) == "fp32"
    monkeypatch.setattr(scorer, "cpu_has_bf16", lambda: True)
    assert scorer.resolve_precision("auto", torch.device("cpu")) == "bf16"
    assert scorer.resolve_precision("fp32", torch.device("cpu")) == "fp32"
    with pytest.raises(ValueError, match="expected a precision among .* found 'fp8'"):
        scorer.resolve_precision("fp8", torch.device("cpu"))
