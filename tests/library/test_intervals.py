"""Bootstrap intervals over answers and reliability: the point is the metrics' own figure, inside its interval, and more answers narrow it."""

import numpy as np
import pytest
from helpers import FIXTURES

from star_scorer import intervals
from star_scorer.data import load_jsonl, segment_spans
from star_scorer.labels import FACTS
from star_scorer.metrics import evaluate_predictions


def noisy(copies: int, seed: int = 0) -> tuple[list[dict], list[dict]]:
    """``copies`` of the fixture answers, each with predictions that get a section, the score and the facts partly wrong."""
    rng = np.random.default_rng(seed)
    base = load_jsonl(FIXTURES / "answers.jsonl")
    records, preds = [], []
    for c in range(copies):
        for r in base:
            records.append(r | {"id": f"{r['id']}-{c}"})
            sections = [{"label": s.label if rng.random() > 0.3 else "ACTION", "start": s.start, "end": s.end} for s in segment_spans(r["segments"])]
            score = int(np.clip(r["result_quality"] + rng.integers(-1, 2), 0, 4))
            facts = {f: float(np.clip((0.75 if r["result_facts"][f] else 0.25) + rng.normal(0, 0.3), 0, 1)) for f in FACTS}
            probs = np.full(5, 0.05)
            probs[score] = 0.8
            preds.append({"sections": sections, "result_quality": {"score": score, "probabilities": probs.tolist(), "facts": facts,
                                                                  "evidence": {}}, "error": None})
    return records, preds


def test_point_estimates_are_the_metrics_figures_inside_their_intervals():
    records, preds = noisy(10)
    got = intervals.bootstrap(records, preds)
    want = evaluate_predictions(records, preds)
    assert got["section_macro_f1"].value == pytest.approx(want["section_macro_f1"])
    assert got["qwk"].value == pytest.approx(want["qwk"])
    assert got["exact"].value == pytest.approx(want["result_quality"]["exact"])
    assert got["within_one"].value == pytest.approx(want["result_quality"]["within_one"])
    assert got["f1_TASK"].value == pytest.approx(want["sections"]["per_label"]["TASK"]["f1"])
    assert got["evidence_char_f1"].value == pytest.approx(want["evidence"]["char_f1"])
    for fact in FACTS:
        assert got[f"fact_f1_{fact}"].value == pytest.approx(want["facts"][fact]["f1"])
    for name in intervals.HEADLINE:
        iv = got[name]
        assert iv.low <= iv.value <= iv.high, name
    assert got["qwk"].high - got["qwk"].low > 0.01  # an interval, not a point
    assert intervals.bootstrap(records, preds)["qwk"] == got["qwk"]  # fixed seed: the same interval every time


def test_more_answers_give_narrower_intervals():
    few, many = intervals.bootstrap(*noisy(5)), intervals.bootstrap(*noisy(40))
    for name in ("section_macro_f1", "qwk", "exact", "facts_f1"):
        assert many[name].high - many[name].low < few[name].high - few[name].low, name


def test_paired_difference_of_a_model_with_itself_is_zero_and_of_a_worse_one_below_zero():
    records, preds = noisy(10)
    same = intervals.paired(records, preds, preds)
    assert (same["qwk"]["difference"].low, same["qwk"]["difference"].high) == (0.0, 0.0)
    worse = [p | {"sections": [s | {"label": "OTHER"} for s in p["sections"]]} for p in preds]
    d = intervals.paired(records, worse, preds)["section_macro_f1"]["difference"]
    assert d.high < 0 and d.value == pytest.approx(-evaluate_predictions(records, preds)["section_macro_f1"])


def test_reliability_brier_and_ece():
    perfect = intervals.reliability(np.array([1.0, 0.0, 1.0]), np.array([1, 0, 1]))
    assert perfect["brier"] == 0.0 and perfect["ece"] == 0.0
    # ten forecasts of 0.9 of which 9 come true: calibrated; of which 5 come true: ECE 0.4
    assert intervals.reliability(np.full(10, 0.9), np.array([1] * 9 + [0]))["ece"] == pytest.approx(0.0)
    half = intervals.reliability(np.full(10, 0.9), np.array([1] * 5 + [0] * 5))
    assert half["ece"] == pytest.approx(0.4) and half["brier"] == pytest.approx((5 * 0.01 + 5 * 0.81) / 10)
    assert [b["n"] for b in half["bins"]] == [10] and half["bins"][0]["low"] == pytest.approx(0.9)
    records, preds = noisy(4)
    cal = intervals.calibration(records, preds)
    assert set(cal["facts"]) == set(FACTS) and 0 <= cal["score"]["ece"] <= 1
    assert 0 <= cal["score"]["brier"] <= 2 and cal["score"]["n"] == 5 * len(records)  # one-vs-rest: five forecasts per answer
