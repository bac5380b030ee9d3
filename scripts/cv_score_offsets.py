"""How much choosing the score's fact offsets on real answers is worth, measured on answers it did not see:
``python scripts/cv_score_offsets.py MODEL [--real ../shared/realworld/dev.jsonl] [--dev data/dev.jsonl] [--repeats 5]``.

The real-answer set is split in half by story (an answer and its variants stay together), ``repeats``
times. Each half in turn chooses the T/B/NB offsets as ``make train`` does (``calibrate.choose_score_offsets``:
the best QWK summed over dev and that half, bagged over bootstrap draws); the other half is scored with them, with
the plain argmax (no bagging), with dev's choice alone, with the choice under the number check on dev's rewrites (``calibrate.number_check_inputs``: what
``make calibrate ... NUMBER_CHECK=0.9`` chooses), and with the result reach chosen with the offsets on the same half
(``calibrate.choose_reach`` over ``RESULT_REACH``, as ``make train`` chooses it) against none. Prints each fold and the mean held-out gains,
so the in-sample figure of the chosen model can be read beside an honest one.
"""

from __future__ import annotations

import argparse
import random
import sys

import numpy as np
from sklearn.metrics import cohen_kappa_score

from star_scorer.data import load_jsonl
from star_scorer.jobs.calibrate import (
    RESULT_REACH,
    choose_reach,
    choose_score_offsets,
    number_check_inputs,
    result_fact_logits,
    rubric_scores,
)
from star_scorer.scorer import StarScorer


def main(argv: list[str] | None = None) -> list[float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--real", default="../shared/realworld/dev.jsonl")
    parser.add_argument("--dev", default="data/dev.jsonl")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    scorer = StarScorer.load(args.model)
    scorer.config.fact_bias = {}
    facts = list(scorer.config.facts)

    def prepared(path: str) -> dict:
        """reach -> (gold scores, *``result_fact_logits`` under that reach, records)."""
        records = load_jsonl(path)
        texts = [r["answer"] for r in records]
        raw = dict(scorer.raw_outputs(texts))
        out = {}
        for reach in RESULT_REACH:
            scorer.config.result_reach = reach
            out[reach] = (np.array([r["result_quality"] for r in records]), *result_fact_logits(scorer, texts, raw), records)
        return out

    dev_by, real_by = prepared(args.dev), prepared(args.real)
    dev, real = dev_by[None], real_by[None]
    scorer.config.result_reach = None
    check, _ = number_check_inputs(scorer, dev[4], dev[1:4])
    dev_only, _, _ = choose_score_offsets([dev[:4]], facts)
    stories = sorted({r["id"].rstrip("v") for r in real[4]})
    gains, checked, bagged, reached = [], [], [], []
    for repeat in range(args.repeats):
        random.Random(repeat).shuffle(stories)
        half = set(stories[: len(stories) // 2])
        a = np.array([r["id"].rstrip("v") in half for r in real[4]])
        for fit, held in ((a, ~a), (~a, a)):
            sets = [dev[:4], tuple(x[fit] for x in real[:4])]
            chosen, _, _ = choose_score_offsets(sets, facts)
            plain, _, _ = choose_score_offsets(sets, facts, resamples=0)
            under_check, _, share = choose_score_offsets(sets, facts, check=check)
            reach, offsets, _, _ = choose_reach({r: ([dev_by[r][:4], tuple(x[fit] for x in real_by[r][:4])], None) for r in RESULT_REACH}, facts)

            def held_out(data: tuple, o: dict, held=held) -> float:
                """QWK on the held-out half of ``data`` (realworld read under one reach) with offsets ``o``."""
                gold, logits, has, support = (x[held] for x in data[:4])
                return cohen_kappa_score(gold, rubric_scores(logits, has, o, facts, support), weights="quadratic")

            qwk = {name: held_out(real, o) for name, o in (("joint", chosen), ("plain", plain), ("dev", dev_only), ("checked", under_check))}
            qwk["reach"] = held_out(real_by[reach], offsets)
            reached.append(qwk["reach"] - qwk["joint"])
            gains.append(qwk["joint"] - qwk["dev"])
            bagged.append(qwk["joint"] - qwk["plain"])
            checked.append(qwk["checked"] - qwk["joint"])
            print(f"repeat {repeat}: offsets {chosen}: held-out QWK {qwk['joint']:.3f} against {qwk['dev']:.3f} with dev's {dev_only}; "
                  f"plain argmax {plain}: {qwk['plain']:.3f}; under the number check {under_check} (dev's check {share}): {qwk['checked']:.3f}; "
                  f"reach {reach} with {offsets}: {qwk['reach']:.3f}")
    for name, values in (("joint choice over dev's", gains), ("bagged joint choice over the plain argmax", bagged), ("choice under the number check over the free joint one", checked),
                         ("result reach chosen with the offsets over none", reached)):
        print(f"held-out QWK gain of the {name}, {len(values)} folds: mean {np.mean(values):+.4f}, sd {np.std(values):.3f}, "
              f"{sum(g > 0 for g in values)} above 0, {sum(g < 0 for g in values)} below")
    return gains


if __name__ == "__main__":
    sys.exit(0 if main() is not None else 1)
