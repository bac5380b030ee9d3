"""Char-level section metrics and Result-quality agreement, as LABELING.md defines them."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import cohen_kappa_score, f1_score

from star_scorer.data import evidence_spans, evidence_texts, step_spans
from star_scorer.labels import COMPETENCIES, FACTS, FAILURE_STEPS, LABEL2ID, NUM_SCORES, SECTION_LABELS, STAR_LABELS, STORY_TYPES
from star_scorer.text import char_labels


def predicted_char_labels(answer: str, sections: list[dict]) -> np.ndarray:
    labels = np.full(len(answer), -1, dtype=np.int64)
    for span in sections:
        labels[span["start"] : span["end"]] = LABEL2ID[span["label"]]
    return labels


def section_confusion(records: list[dict], predictions: list[dict]) -> np.ndarray:
    """5x5 counts of (gold, predicted) over every non-whitespace character."""
    k = len(SECTION_LABELS)
    cm = np.zeros((k, k), dtype=np.int64)
    for rec, pred in zip(records, predictions):
        gold = char_labels(rec["answer"], rec["segments"])
        guess = predicted_char_labels(rec["answer"], pred["sections"])
        keep = np.array([not c.isspace() for c in rec["answer"]], dtype=bool) & (gold >= 0)
        guess = np.where(guess[keep] >= 0, guess[keep], LABEL2ID["OTHER"])  # an uncovered char counts as OTHER
        np.add.at(cm, (gold[keep], guess), 1)
    return cm


def prf_from_confusion(cm: np.ndarray) -> dict[str, dict[str, float]]:
    out = {}
    for i, label in enumerate(SECTION_LABELS):
        tp = cm[i, i]
        p = tp / cm[:, i].sum() if cm[:, i].sum() else 0.0
        r = tp / cm[i, :].sum() if cm[i, :].sum() else 0.0
        f = 2 * p * r / (p + r) if p + r else 0.0
        out[label] = {"precision": float(p), "recall": float(r), "f1": float(f), "support_chars": int(cm[i, :].sum())}
    return out


def section_metrics(records: list[dict], predictions: list[dict]) -> dict:
    cm = section_confusion(records, predictions)
    per_label = prf_from_confusion(cm)
    return {
        "per_label": per_label,
        "macro_f1": float(np.mean([per_label[label]["f1"] for label in STAR_LABELS])),
        "macro_f1_all5": float(np.mean([per_label[label]["f1"] for label in SECTION_LABELS])),
        "char_accuracy": float(np.trace(cm) / max(cm.sum(), 1)),
        "confusion": cm.tolist(),
    }


def quality_metrics(gold: list[int], pred: list[int]) -> dict:
    g, p = np.asarray(gold), np.asarray(pred)
    labels = list(range(NUM_SCORES))
    qwk = cohen_kappa_score(g, p, weights="quadratic", labels=labels) if len(set(g) | set(p)) > 1 else 0.0
    cm = np.zeros((NUM_SCORES, NUM_SCORES), dtype=np.int64)
    np.add.at(cm, (g, p), 1)
    return {
        "qwk": float(np.nan_to_num(qwk)),
        "exact": float(np.mean(g == p)),
        "within_one": float(np.mean(np.abs(g - p) <= 1)),
        "confusion": cm.tolist(),
    }


def facts_metrics(gold: list[dict], pred: list[dict], threshold: float = 0.5) -> dict:
    out = {}
    for fact in FACTS:
        y = [bool(g[fact]) for g in gold]
        yhat = [p[fact] >= threshold for p in pred]
        out[fact] = {"f1": float(f1_score(y, yhat, zero_division=0.0)), "positives": int(sum(y))}
    return out


def evidence_counts(rec: dict, pred: dict) -> dict[str, np.ndarray] | None:
    """Per fact, the tp, fp, fn non-space characters of one answer's predicted evidence against its gold evidence
    (see ``evidence_metrics``); None when the answer's evidence is unknown."""
    facts = rec["result_facts"]
    if not evidence_texts(rec) and any(facts.values()):
        return None
    answer = rec["answer"]
    keep = np.array([not c.isspace() for c in answer], dtype=bool)
    gold_spans = evidence_spans(rec)
    evidence = (pred.get("result_quality") or {}).get("evidence") or {}
    out = {}
    for fact in FACTS:
        gold = np.zeros(len(answer), dtype=bool)
        if facts[fact]:
            for a, b in gold_spans.get(fact, []):
                gold[a:b] = True
        guess = np.zeros_like(gold)
        span = evidence.get(fact)
        if span and span.get("holds"):
            guess[span["start"] : span["end"]] = True
        gold, guess = gold & keep, guess & keep
        out[fact] = np.array([(gold & guess).sum(), (guess & ~gold).sum(), (gold & ~guess).sum()], dtype=np.int64)
    return out


def evidence_metrics(records: list[dict], predictions: list[dict]) -> dict:
    """Character F1 of each fact's predicted evidence against the gold evidence clauses.

    Counted over the answers whose evidence is known (a ``result_evidence`` field, or no
    fact holding). Per fact and answer: gold characters are the union of its gold clauses
    when the fact holds, else none; predicted characters are the predicted span when the
    model says the fact holds, else none. So a missed fact costs its gold characters and a
    wrongly claimed one its span: the figure reads facts and their place together.
    ``located`` counts only the (answer, fact) pairs where both say the fact holds.
    """
    counts = {f: np.zeros(3) for f in FACTS}  # tp, fp, fn
    located = np.zeros(3)
    n = 0
    for rec, pred in zip(records, predictions):
        rows = evidence_counts(rec, pred)
        if rows is None:
            continue
        n += 1
        for fact, row in rows.items():
            counts[fact] += row
            tp, fp, fn = row
            if tp + fn and tp + fp:  # both say the fact holds here
                located += row

    def f1(tp_fp_fn: np.ndarray) -> float:
        tp, fp, fn = tp_fp_fn
        return float(2 * tp / (2 * tp + fp + fn)) if tp + fp + fn else 0.0

    total = sum(counts.values())
    return {"answers": n, "char_f1": f1(total), "located_char_f1": f1(located), "per_fact": {f: f1(c) for f, c in counts.items()}}


def evaluate_predictions(records: list[dict], predictions: list[dict]) -> dict:
    """All headline figures for predictions (scorer output rows) against gold records."""
    ok = [(r, p) for r, p in zip(records, predictions) if not p.get("error")]
    recs = [r for r, _ in ok]
    preds = [p for _, p in ok]
    sections = section_metrics(recs, preds)
    quality = quality_metrics([r["result_quality"] for r in recs], [p["result_quality"]["score"] for p in preds])
    facts = facts_metrics([r["result_facts"] for r in recs], [p["result_quality"]["facts"] for p in preds])
    evidence = evidence_metrics(recs, preds)
    return {
        "n_answers": len(records),
        "n_errors": len(records) - len(ok),
        "sections": sections,
        "result_quality": quality,
        "facts": facts,
        "evidence": evidence,
        "section_macro_f1": sections["macro_f1"],
        "qwk": quality["qwk"],
        "combined": (sections["macro_f1"] + max(quality["qwk"], 0.0)) / 2,
    }


def step_char_counts(text: str, gold: dict[str, list[tuple[int, int]]], pred: dict[str, list[tuple[int, int]]]) -> dict[str, np.ndarray]:
    """Per failure step, (true positive, false positive, false negative) characters, whitespace ignored."""
    content = np.array([not c.isspace() for c in text], dtype=bool)
    out = {}
    for step in FAILURE_STEPS:
        g = np.zeros(len(text), bool)
        p = np.zeros(len(text), bool)
        for s, e in gold.get(step, []):
            g[s:e] = True
        for s, e in pred.get(step, []):
            p[s:e] = True
        g, p = g & content, p & content
        out[step] = np.array([np.sum(g & p), np.sum(p & ~g), np.sum(g & ~p)])
    return out


def pooled_step_f1(texts: list[str], golds: list[dict[str, list[tuple[int, int]]]],
                   preds: list[dict[str, list[tuple[int, int]]]]) -> dict[str, float]:
    """Per failure step, character F1 of ``preds`` against ``golds`` (``step_char_counts`` summed over the answers)."""
    counts = {step: np.zeros(3) for step in FAILURE_STEPS}  # tp, fp, fn
    for text, gold, pred in zip(texts, golds, preds):
        for step, c in step_char_counts(text, gold, pred).items():
            counts[step] += c
    return {step: float(2 * tp / max(2 * tp + fp + fn, 1)) for step, (tp, fp, fn) in counts.items()}


def predicted_step_spans(row: dict) -> dict[str, list[tuple[int, int]]]:
    """A scored row's failure-step spans as (start, end) per step ({} when the row has no story)."""
    return {step: [(s["start"], s["end"]) for s in v["spans"]] for step, v in ((row or {}).get("story") or {}).get("failure_steps", {}).items()}


def story_metrics(records: list[dict], predictions: list[dict]) -> dict | None:
    """Issue 17's figures from scored rows' ``story``: story type accuracy, competency top-1 and top-2 over the answers
    labelled with them; per failure step, character F1 of the predicted spans against the annotated ones, over the
    answers annotated for steps. None when no row has a story or no record a story label."""
    pairs = [(r, p) for r, p in zip(records, predictions) if r.get("story_type") in STORY_TYPES and (p or {}).get("story")]
    if not pairs:
        return None
    ranked = [list(p["story"]["competencies"]) for _, p in pairs]
    annotated = [(r, gold, p) for r, gold, p in ((r, step_spans(r), p) for r, p in pairs) if gold is not None]
    with_competency = [(r, k) for (r, _), k in zip(pairs, ranked) if r.get("competency") in COMPETENCIES]
    return {
        "n_answers": len(pairs),
        "n_step_annotated": len(annotated),
        "story_type_accuracy": float(np.mean([p["story"]["story_type"] == r["story_type"] for r, p in pairs])),
        "competency_top1": float(np.mean([k[:1] == [r["competency"]] for r, k in with_competency])) if with_competency else None,
        "competency_top2": float(np.mean([r["competency"] in k[:2] for r, k in with_competency])) if with_competency else None,
        "step_char_f1": pooled_step_f1([r["answer"] for r, _, _ in annotated], [gold for _, gold, _ in annotated],
                                       [predicted_step_spans(p) for _, _, p in annotated]),
    }
