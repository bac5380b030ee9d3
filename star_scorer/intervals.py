"""Bootstrap 95% intervals over answers, and reliability (Brier score, expected calibration error).

Every figure of ``star_scorer.metrics`` that sums over answers is rebuilt here from per-answer
counts (a 5x5 character confusion, a score pair, fact and evidence hits), so a resample of the
answers is a weighted sum of those counts: ``B`` resamples of ``n`` answers are one ``(B, n)``
matrix of draw counts times an ``(n, k)`` matrix of counts, and 1,000 resamples of 280 answers
take well under a second. The point estimate is the figure on the answers as they are (equal to
``metrics.evaluate_predictions``); the interval is the 2.5th and 97.5th percentile of the
resampled figures (the percentile bootstrap). Two models scored on the same answers are compared
with the same draws (``paired``): the interval of the difference, not two intervals side by side.

Reliability: for each rubric fact, its probability against the gold fact; for the score, one-vs-rest
over the five scores (every answer and score k is a forecast ``probabilities[k]`` of "the gold score
is k"): Brier is the multi-class Brier score (the sum over the five scores of the squared error, mean
over answers, 0 best, 2 worst) and ECE is over the pooled one-vs-rest forecasts, in 10 equal-width bins.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from star_scorer.labels import FACTS, LABEL2ID, NUM_SCORES, SECTION_LABELS, STAR_LABELS
from star_scorer.metrics import evidence_counts, predicted_char_labels
from star_scorer.text import char_labels

RESAMPLES = 1000  # percentile intervals settle to about +-0.005 at 1,000 draws on these set sizes
SEED = 0  # fixed: the same answers and predictions always give the same interval
LEVEL = 0.95
BINS = 10  # reliability bins of equal width over [0, 1]

HEADLINE = ("section_macro_f1", "qwk", "exact", "within_one", "facts_f1", "evidence_char_f1")
_K = len(SECTION_LABELS)
_STAR = [LABEL2ID[label] for label in STAR_LABELS]
_QWK_WEIGHTS = (np.subtract.outer(np.arange(NUM_SCORES), np.arange(NUM_SCORES)) ** 2) / (NUM_SCORES - 1) ** 2


@dataclass(frozen=True)
class Interval:
    value: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float]:
        return {"value": self.value, "low": self.low, "high": self.high}


def answer_counts(records: list[dict], predictions: list[dict]) -> dict[str, np.ndarray]:
    """Per-answer counts behind every figure; answers whose prediction has an ``error`` are left out (as metrics does)."""
    ok = [(r, p) for r, p in zip(records, predictions) if not p.get("error")]
    n = len(ok)
    sections = np.zeros((n, _K * _K), dtype=np.int64)
    scores = np.zeros((n, NUM_SCORES * NUM_SCORES), dtype=np.int64)
    facts = np.zeros((n, len(FACTS), 3), dtype=np.int64)  # tp, fp, fn
    evidence = np.zeros((n, 3), dtype=np.int64)
    for i, (rec, pred) in enumerate(ok):
        answer = rec["answer"]
        gold = char_labels(answer, rec["segments"])
        guess = predicted_char_labels(answer, pred["sections"])
        keep = np.array([not c.isspace() for c in answer], dtype=bool) & (gold >= 0)
        guess = np.where(guess[keep] >= 0, guess[keep], LABEL2ID["OTHER"])
        sections[i] = np.bincount(gold[keep] * _K + guess, minlength=_K * _K)
        quality = pred["result_quality"]
        scores[i, int(rec["result_quality"]) * NUM_SCORES + int(quality["score"])] = 1
        for j, fact in enumerate(FACTS):
            y, yhat = bool(rec["result_facts"][fact]), quality["facts"][fact] >= 0.5
            facts[i, j] = (y and yhat, yhat and not y, y and not yhat)
        evidence[i] = _evidence_counts(rec, pred)
    return {"sections": sections, "scores": scores, "facts": facts, "evidence": evidence}


def _evidence_counts(rec: dict, pred: dict) -> np.ndarray:
    """tp, fp, fn characters of all facts' evidence (``metrics.evidence_counts`` summed); -1s where the evidence is unknown."""
    rows = evidence_counts(rec, pred)
    return np.array([-1, -1, -1]) if rows is None else sum(rows.values())


def _f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    denom = 2 * tp + fp + fn
    return np.divide(2 * tp, denom, out=np.zeros(np.broadcast(tp, fp, fn).shape, dtype=float), where=denom > 0)


def figures(counts: dict[str, np.ndarray], weights: np.ndarray) -> dict[str, np.ndarray]:
    """Every figure for each row of ``weights`` (``(B, n)`` times each answer is drawn); ``(B,)`` arrays."""
    w = weights.astype(float)
    cm = (w @ counts["sections"]).reshape(-1, _K, _K)
    tp = cm[:, np.arange(_K), np.arange(_K)]
    label_f1 = _f1(tp, cm.sum(1) - tp, cm.sum(2) - tp)  # (B, K): precision over predicted, recall over gold
    out = {f"f1_{label}": label_f1[:, LABEL2ID[label]] for label in SECTION_LABELS}
    out["section_macro_f1"] = label_f1[:, _STAR].mean(1)
    sc = (w @ counts["scores"]).reshape(-1, NUM_SCORES, NUM_SCORES)
    total = sc.sum((1, 2))
    out["qwk"] = qwk_of_confusions(sc)
    diag = sc[:, np.arange(NUM_SCORES), np.arange(NUM_SCORES)].sum(1)
    near = sum(sc[:, i, j] for i in range(NUM_SCORES) for j in range(NUM_SCORES) if abs(i - j) <= 1)
    out["exact"] = diag / np.maximum(total, 1)
    out["within_one"] = near / np.maximum(total, 1)
    f = np.einsum("bn,nfk->bfk", w, counts["facts"])
    fact_f1 = _f1(f[..., 0], f[..., 1], f[..., 2])
    for j, fact in enumerate(FACTS):
        out[f"fact_f1_{fact}"] = fact_f1[:, j]
    out["facts_f1"] = fact_f1.mean(1)
    known = counts["evidence"][:, 0] >= 0
    e = w[:, known] @ counts["evidence"][known].astype(float)
    out["evidence_char_f1"] = _f1(e[:, 0], e[:, 1], e[:, 2])
    return out


def qwk_of_confusions(cm: np.ndarray) -> np.ndarray:
    """Quadratic-weighted kappa of each ``(gold, predicted)`` score count matrix in ``cm`` (``(B, 5, 5)``); 0 where one
    score alone is present, as ``metrics``."""
    expected = np.einsum("bi,bj->bij", cm.sum(2), cm.sum(1)) / np.maximum(cm.sum((1, 2)), 1)[:, None, None]
    num, den = (cm * _QWK_WEIGHTS).sum((1, 2)), (expected * _QWK_WEIGHTS).sum((1, 2))
    return np.divide(den - num, den, out=np.zeros_like(den), where=den > 0)


def draws(n: int, resamples: int = RESAMPLES, seed: int = SEED) -> np.ndarray:
    """``(resamples, n)`` counts: how often each answer is drawn in each resample of ``n`` answers with replacement."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n, np.full(n, 1.0 / n), size=resamples) if n else np.zeros((resamples, 0), dtype=np.int64)


def _interval(point: float, samples: np.ndarray, level: float) -> Interval:
    lo, hi = np.percentile(samples, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return Interval(float(point), float(lo), float(hi))


def bootstrap(records: list[dict], predictions: list[dict], resamples: int = RESAMPLES, seed: int = SEED,
              level: float = LEVEL) -> dict[str, Interval]:
    """Each figure with its percentile-bootstrap interval over answers."""
    counts = answer_counts(records, predictions)
    n = len(counts["scores"])
    point = figures(counts, np.ones((1, n)))
    samples = figures(counts, draws(n, resamples, seed))
    return {name: _interval(point[name][0], samples[name], level) for name in point}


def paired(records: list[dict], challenger: list[dict], champion: list[dict], resamples: int = RESAMPLES, seed: int = SEED,
           level: float = LEVEL) -> dict[str, dict[str, Interval]]:
    """Two models' predictions on the same answers: each one's intervals and those of the difference (challenger - champion),
    all from the same draws. Answers either model failed to score are left out of both."""
    keep = [i for i, (a, b) in enumerate(zip(challenger, champion)) if not a.get("error") and not b.get("error")]
    recs = [records[i] for i in keep]
    a, b = answer_counts(recs, [challenger[i] for i in keep]), answer_counts(recs, [champion[i] for i in keep])
    n, w = len(keep), draws(len(keep), resamples, seed)
    pa, pb = figures(a, np.ones((1, n))), figures(b, np.ones((1, n)))
    sa, sb = figures(a, w), figures(b, w)
    return {name: {"challenger": _interval(pa[name][0], sa[name], level), "champion": _interval(pb[name][0], sb[name], level),
                   "difference": _interval(pa[name][0] - pb[name][0], sa[name] - sb[name], level)} for name in pa}


def reliability(probabilities: np.ndarray, outcomes: np.ndarray, bins: int = BINS) -> dict:
    """Brier score (mean squared error of the probabilities), expected calibration error over ``bins`` equal-width
    bins (the answers' share in each bin times |mean probability - observed frequency|, summed) and the bins themselves."""
    p, y = np.asarray(probabilities, dtype=float).ravel(), np.asarray(outcomes, dtype=float).ravel()
    index = np.minimum((p * bins).astype(int), bins - 1)
    rows, ece = [], 0.0
    for k in range(bins):
        inside = index == k
        if not inside.any():
            continue
        mean_p, freq = float(p[inside].mean()), float(y[inside].mean())
        ece += inside.mean() * abs(mean_p - freq)
        rows.append({"low": k / bins, "high": (k + 1) / bins, "n": int(inside.sum()), "mean_probability": mean_p, "frequency": freq})
    return {"brier": float(np.mean((p - y) ** 2)) if len(p) else 0.0, "ece": float(ece), "n": int(len(p)), "bins": rows}


def calibration(records: list[dict], predictions: list[dict], bins: int = BINS) -> dict:
    """Reliability of each fact's probability against the gold fact, and of the score probabilities one-vs-rest."""
    ok = [(r, p) for r, p in zip(records, predictions) if not p.get("error")]
    out = {"facts": {}}
    for fact in FACTS:
        probs = np.array([p["result_quality"]["facts"][fact] for _, p in ok], dtype=float)
        gold = np.array([bool(r["result_facts"][fact]) for r, _ in ok], dtype=float)
        out["facts"][fact] = reliability(probs, gold, bins)
    probs = np.array([p["result_quality"]["probabilities"] for _, p in ok], dtype=float).reshape(-1, NUM_SCORES)
    onehot = np.eye(NUM_SCORES)[[int(r["result_quality"]) for r, _ in ok]].reshape(-1, NUM_SCORES)
    score = reliability(probs, onehot, bins)
    score["brier"] = float(((probs - onehot) ** 2).sum(1).mean()) if len(probs) else 0.0  # multi-class: summed over the 5 scores
    score["gold_probability"] = float(probs[onehot.astype(bool)].mean()) if len(probs) else 0.0
    out["score"] = score
    return out
