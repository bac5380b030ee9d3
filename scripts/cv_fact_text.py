"""What the fact text model is worth on real answers it did not choose on:
``python scripts/cv_fact_text.py MODEL [--real ../shared/realworld/dev.jsonl] [--dev data/dev.jsonl] [--repeats 5]``.

MODEL must hold a fact text model (``clause_text.FactText``; ``star-scorer calibrate --model M --fit-fact-text``
fits one). The folds are ``scripts/cv_score_offsets.py``'s: realworld split in half by story, ``repeats`` times, each
half choosing for the other. In each fold, every weight of ``calibrate.FACT_TEXT_WEIGHTS`` gets its result reach and
T/B/NB offsets chosen on dev and the fitting half as ``make train`` chooses them (``calibrate.choose_reach``, bagged);
the held-out half is scored under each weight (weight 0: the heads alone, what the model without the words would
give) and under the weight whose choice scored best on the fitting half (the honest figure for a model whose weight
was chosen on all of realworld). Prints each fold and the means.
"""

from __future__ import annotations

import argparse
import random
import sys

import numpy as np
from sklearn.metrics import cohen_kappa_score

from star_scorer.data import load_jsonl
from star_scorer.jobs.calibrate import (
    FACT_TEXT_WEIGHTS,
    RESULT_REACH,
    choose_reach,
    result_fact_logits,
    rubric_scores,
    with_word_logits,
    word_logits,
)
from star_scorer.scorer import StarScorer


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--real", default="../shared/realworld/dev.jsonl")
    parser.add_argument("--dev", default="data/dev.jsonl")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    scorer = StarScorer.load(args.model)
    if scorer.fact_text is None:
        raise SystemExit(f"expected a fact text model in {args.model}, found none: fit one with star-scorer calibrate --model M --fit-fact-text")
    text, scorer.fact_text = scorer.fact_text, None
    scorer.config.fact_bias = {}
    facts = list(scorer.config.facts)

    def prepared(path: str) -> tuple[list[dict], dict]:
        """(records, {(weight, reach): (gold scores, *``result_fact_logits``)})."""
        records = load_jsonl(path)
        texts = [r["answer"] for r in records]
        raw = dict(scorer.raw_outputs(texts))
        words = word_logits(text, texts, raw)
        gold = np.array([r["result_quality"] for r in records])
        out = {}
        for weight in FACT_TEXT_WEIGHTS:
            with_words = with_word_logits(raw, words, weight)
            for reach in RESULT_REACH:
                scorer.config.result_reach = reach
                out[weight, reach] = (gold, *result_fact_logits(scorer, texts, with_words))
        return records, out

    (_, dev), (real_records, real) = prepared(args.dev), prepared(args.real)
    stories = sorted({r["id"].rstrip("v") for r in real_records})
    held = {w: [] for w in FACT_TEXT_WEIGHTS} | {"chosen": []}
    for repeat in range(args.repeats):
        random.Random(repeat).shuffle(stories)
        half = set(stories[: len(stories) // 2])
        a = np.array([r["id"].rstrip("v") in half for r in real_records])
        for fit, out in ((a, ~a), (~a, a)):
            choices = {}
            for weight in FACT_TEXT_WEIGHTS:
                choices[weight] = choose_reach({r: ([dev[weight, r], tuple(x[fit] for x in real[weight, r])], None) for r in RESULT_REACH}, facts)
                reach, offsets = choices[weight][:2]
                gold, logits, has, support = (x[out] for x in real[weight, reach])
                held[weight].append(cohen_kappa_score(gold, rubric_scores(logits, has, offsets, facts, support), weights="quadratic"))
            best = max(FACT_TEXT_WEIGHTS, key=lambda w: (choices[w][2], -w))
            held["chosen"].append(held[best][-1])
            print(f"repeat {repeat}: held-out QWK by weight " + ", ".join(f"{w}: {held[w][-1]:.3f}" for w in FACT_TEXT_WEIGHTS)
                  + f"; weight {best} chosen on the fitting half: {held['chosen'][-1]:.3f}", flush=True)
    means = {str(k): float(np.mean(v)) for k, v in held.items()}
    gains = np.array(held["chosen"]) - np.array(held[0.0])
    print("mean held-out QWK: " + ", ".join(f"weight {k} {v:.3f}" for k, v in means.items()))
    print(f"the weight chosen in the fold over the heads alone: mean {gains.mean():+.4f}, {int((gains > 0).sum())} folds above 0, "
          f"{int((gains < 0).sum())} below")
    return means


if __name__ == "__main__":
    sys.exit(0 if main() is not None else 1)
