"""Augmentation ablation table: ``python -m star_scorer.research.ablation --models A B [--data data/dev.jsonl]``.

For each model, the dev figures on the untouched answers and on the answers
rewritten by each augmentation transform (seeded), so a model trained with a
transform can be compared with one trained without it, transform by transform.
"""

from __future__ import annotations

import argparse
import logging
import random
from pathlib import Path

from star_scorer.data import load_jsonl
from star_scorer.jobs.augment import TRANSFORMS
from star_scorer.metrics import evaluate_predictions
from star_scorer.scorer import StarScorer

logger = logging.getLogger(__name__)


def run(models: list[str], data: str, seed: int = 0, transforms: list[str] | None = None) -> dict:
    records = load_jsonl(data)
    variants = {"original": records}
    for name, fn in TRANSFORMS.items():
        if transforms and name not in transforms:
            continue
        rng = random.Random(seed)
        variants[name] = [fn(r, rng) for r in records]
    table: dict[str, dict] = {}
    for model in models:
        scorer = StarScorer.load(model)
        table[model] = {}
        for name, recs in variants.items():
            m = evaluate_predictions(recs, scorer.score_rows(recs, max_windows=32))
            table[model][name] = {"section_macro_f1": m["section_macro_f1"], "qwk": m["qwk"]}
    return table


def markdown(table: dict) -> str:
    models = list(table)
    names = list(next(iter(table.values())))
    lines = ["| dev variant | " + " | ".join(f"{Path(m).name} macro-F1 / QWK" for m in models) + " |", "|---" * (len(models) + 1) + "|"]
    for name in names:
        cells = [f"{table[m][name]['section_macro_f1']:.3f} / {table[m][name]['qwk']:.3f}" for m in models]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", required=True)
    parser.add_argument("--data", default="data/dev.jsonl")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--transforms", nargs="*", default=None, help="only these rewrites of the data (default: all)")
    args = parser.parse_args(argv)
    table = run(args.models, args.data, args.seed, args.transforms)
    print(markdown(table))
    return table


if __name__ == "__main__":
    main()
