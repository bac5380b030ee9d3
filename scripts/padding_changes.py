"""Why padding a Result with neutral sentences changes a model's score: ``python scripts/padding_changes.py MODEL [--data data/test.jsonl]``.

Pads every answer with a Result as the robustness check does (``research.robustness``: one to three sentences of
``neutral_check.txt``, seed 0) and sorts the answers whose score changed: no Result found before (the padded lessons
become one), every flipped fact within ``--margin`` of its threshold before or after, the text read as RESULT moved,
or other. Prints the counts, the facts that flipped and the score moves.
"""

from __future__ import annotations

import argparse
import random
from collections import Counter

from star_scorer.data import load_jsonl
from star_scorer.research.robustness import padded_rows
from star_scorer.scorer import StarScorer


def kind(before: dict, after: dict, margin: float) -> str:
    old = [s["text"] for s in before["sections"] if s["label"] == "RESULT"]
    if not old:
        return "no Result before"
    facts_before, facts_after = before["result_quality"]["facts"], after["result_quality"]["facts"]
    flipped = [f for f in facts_before if (facts_before[f] >= 0.5) != (facts_after[f] >= 0.5)]
    if flipped and all(min(abs(facts_before[f] - 0.5), abs(facts_after[f] - 0.5)) < margin for f in flipped):
        return f"a fact within {margin} of 0.5 (before or after) flipped"
    new = " ".join(s["text"] for s in after["sections"] if s["label"] == "RESULT")
    if any(t not in new for t in old):
        return "the RESULT text moved"
    return "other"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--data", default="data/test.jsonl")
    parser.add_argument("--margin", type=float, default=0.15)
    args = parser.parse_args(argv)
    records = load_jsonl(args.data)
    scorer = StarScorer.load(args.model)
    base = scorer.score_rows(records)
    idx, padded = padded_rows(scorer, records, base, random.Random(0))
    kinds, moves, flips = Counter(), Counter(), Counter()
    for i, p in zip(idx, padded):
        b, a = base[i]["result_quality"], p["result_quality"]
        if a["score"] == b["score"]:
            continue
        kinds[kind(base[i], p, args.margin)] += 1
        moves[f"{b['score']} -> {a['score']}"] += 1
        flips.update(f for f in b["facts"] if (b["facts"][f] >= 0.5) != (a["facts"][f] >= 0.5))
    changed = sum(kinds.values())
    print(f"{changed} of {len(idx)} answers changed score ({changed / max(len(idx), 1):.3f})")
    for name, counter in (("why", kinds), ("facts flipped", flips), ("score moves", moves)):
        print(f"{name}: " + ", ".join(f"{k} {v}" for k, v in counter.most_common()))
    return {"answers": len(idx), "changed": changed, "why": dict(kinds), "flips": dict(flips), "moves": dict(moves)}


if __name__ == "__main__":
    main()
