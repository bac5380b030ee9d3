"""Where a model's Result facts part from the gold ones: ``python scripts/fact_errors.py MODEL [--data FILE] [--show]``.

Scores the labelled answers (fp32, as evaluation does) and counts, per fact, the answers where the scorer says
it holds and the gold says not (fp) and the reverse (fn), by the scorer's own decision (``evidence[fact].holds``).
``--show`` prints each such answer: gold and predicted score, the fact's probability and evidence, and the gold
Result and evidence, for reading what kind of clause goes wrong.
"""

from __future__ import annotations

import argparse
from collections import Counter

from star_scorer.io import read_rows
from star_scorer.labels import FACTS
from star_scorer.scorer import StarScorer


def fact_errors(model: str, data: str) -> list[dict]:
    gold = read_rows(data)
    scorer = StarScorer.load(model, precision="fp32")
    rows = scorer.score_rows([{"id": g["id"], "answer": g["answer"]} for g in gold])
    errors = []
    for g, row in zip(gold, rows):
        evidence = row["result_quality"]["evidence"] or {}
        for fact in FACTS:
            said = bool((evidence.get(fact) or {}).get("holds"))
            if said != bool(g["result_facts"][fact]):
                errors.append({"id": g["id"], "fact": fact, "kind": "fp" if said else "fn", "gold_score": g["result_quality"],
                               "score": row["result_quality"]["score"], "evidence": evidence.get(fact) or {},
                               "gold_result": " | ".join(s["text"] for s in g["segments"] if s["label"] == "RESULT"),
                               "gold_evidence": (g.get("result_evidence") or {}).get(fact)})
    return errors


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--data", default="../shared/realworld/dev.jsonl")
    parser.add_argument("--show", action="store_true", help="print every error, not only the counts")
    args = parser.parse_args(argv)
    errors = fact_errors(args.model, args.data)
    counts = Counter((e["fact"], e["kind"]) for e in errors)
    for fact in FACTS:
        print(f"{fact}: fp {counts[fact, 'fp']}, fn {counts[fact, 'fn']}")
    if args.show:
        for e in errors:
            ev = e["evidence"]
            print(f"\n{e['kind'].upper()} {e['fact']} {e['id']} gold {e['gold_score']} pred {e['score']} "
                  f"p={ev.get('probability', 0):.2f}: {ev.get('text', '')[:120]}")
            print(f"  gold Result: {e['gold_result'][:300]}\n  gold evidence: {e['gold_evidence']}")


if __name__ == "__main__":
    main()
