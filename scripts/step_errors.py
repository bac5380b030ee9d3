"""Where a model's failure steps miss: ``python scripts/step_errors.py MODEL [--data data/test.jsonl]``.

Over the answers annotated for steps, per step: how many answers both the annotation and the model mark, the model
misses, the model marks alone, neither marks; the pooled character F1 (as ``make evaluate`` reports it) and the same
over the answers both mark (where only the boundaries can be wrong), with its precision and recall. The answers are
scored on their own, so bf16 rounding in other batches can move a figure by about 0.01 from ``make evaluate``'s.
"""

from __future__ import annotations

import argparse
from collections import Counter

import numpy as np

from star_scorer.data import load_jsonl
from star_scorer.labels import FAILURE_STEPS
from star_scorer.metrics import predicted_step_spans, step_char_counts, step_spans
from star_scorer.scorer import StarScorer


def f1(tp_fp_fn: np.ndarray) -> float:
    tp, fp, fn = tp_fp_fn
    return float(2 * tp / max(2 * tp + fp + fn, 1))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--data", default="data/test.jsonl")
    args = parser.parse_args(argv)
    records = [r for r in load_jsonl(args.data) if step_spans(r) is not None]
    predictions = StarScorer.load(args.model).score_rows(records)
    presence: Counter = Counter()
    pooled = {s: np.zeros(3) for s in FAILURE_STEPS}
    located = {s: np.zeros(3) for s in FAILURE_STEPS}
    for record, row in zip(records, predictions):
        gold, pred = step_spans(record), predicted_step_spans(row)
        counts = step_char_counts(record["answer"], gold, pred)
        for step in FAILURE_STEPS:
            marked = (bool(gold.get(step)), bool(pred.get(step)))
            presence[(step, marked)] += 1
            pooled[step] += counts[step]
            if all(marked):
                located[step] += counts[step]
    out = {}
    print(f"{len(records)} answers annotated for steps in {args.data}")
    for step in FAILURE_STEPS:
        tp, fp, fn = located[step]
        out[step] = {"both": presence[(step, (True, True))], "missed": presence[(step, (True, False))],
                     "model_alone": presence[(step, (False, True))], "neither": presence[(step, (False, False))],
                     "char_f1": f1(pooled[step]), "located_f1": f1(located[step]),
                     "located_precision": float(tp / max(tp + fp, 1)), "located_recall": float(tp / max(tp + fn, 1))}
        print(f"{step:11s} " + "  ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in out[step].items()))
    return out


if __name__ == "__main__":
    main()
