"""Average whole trained models (encoders and heads) and decode with the first one's calibration.

``python scripts/ensemble_probe.py MODEL [MODEL ...]``: for k = 1..len(models), the first k models'
token log-probabilities, score and fact logits are averaged per answer and decoded; prints section
macro-F1, QWK, per-label F1 and the slices on dev and on the blind test (docs/experiments.md, session 6).
"""

from __future__ import annotations

import sys

import numpy as np

from star_scorer.data import load_jsonl
from star_scorer.jobs.evaluate import slice_metrics
from star_scorer.metrics import evaluate_predictions
from star_scorer.paths import DATA_DIR
from star_scorer.scorer import StarScorer


def main(models: list[str]) -> None:
    scorers = [StarScorer.load(m) for m in models]
    for split in ("dev", "test"):
        records = load_jsonl(DATA_DIR / f"{split}.jsonl")
        answers = [r["answer"] for r in records]
        raws = [dict(s.raw_outputs(answers)) for s in scorers]
        for k in range(1, len(models) + 1):
            preds = []
            for i, text in enumerate(answers):
                encoding = raws[0][i][0]
                token_logp, cum, facts = (np.mean([r[i][part] for r in raws[:k]], 0) for part in (1, 2, 3))
                preds.append(scorers[0].decode(text, encoding, token_logp, cum, facts))
            report = evaluate_predictions(records, preds)
            per_label = {label: round(v["f1"], 3) for label, v in report["sections"]["per_label"].items()}
            slices = {name: round(v["section_macro_f1"], 3) for name, v in slice_metrics(records, preds).items()}
            print(f"{split} k={k}: sections {report['section_macro_f1']:.3f} QWK {report['qwk']:.3f} {per_label} {slices}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
