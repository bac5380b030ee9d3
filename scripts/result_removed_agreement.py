"""How much of the "Result removed -> 0" shortfall is text a second annotator calls Result.

    python scripts/result_removed_agreement.py [--model models/...] [--data data/test.jsonl] [--second data/second_labels/test]

`make robustness` drops the first annotator's RESULT segments and asks the model
for a score of 0. Text that the first annotator called ACTION but a second careful
annotator calls RESULT (an outcome told among the actions) stays in the answer, and
a model that reads it as RESULT fails the check. This drops, in turn, the first
annotator's Result, the second's, and the union of both, and prints the share of
answers scored 0 after each.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from pipeline.agreement import second_records
from pipeline.augment import drop
from pipeline.data import load_jsonl, segment_spans
from pipeline.predictor import StarScorer


def union_segments(first: dict, second: dict) -> list[dict]:
    """The answer cut at both annotators' boundaries; a piece is RESULT if either says so, else the first's label."""
    a, b = segment_spans(first["segments"]), segment_spans(second["segments"])
    cuts = sorted({s.start for s in a} | {s.start for s in b} | {len(first["answer"]) + 1})
    pieces = []
    for start, end in zip(cuts, cuts[1:]):
        text = first["answer"][start:end - 1]
        first_label = next(s.label for s in a if s.start <= start < s.end + 1)
        second_label = next(s.label for s in b if s.start <= start < s.end + 1)
        label = "RESULT" if "RESULT" in (first_label, second_label) else first_label
        pieces.append({"text": text, "label": label})
    return pieces


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--data", default="data/test.jsonl")
    parser.add_argument("--second", default="data/second_labels/test")
    args = parser.parse_args()
    firsts = load_jsonl(args.data)
    seconds = second_records(firsts, Path(args.second))
    scorer = StarScorer.load(args.model)
    rng = random.Random(0)
    has = lambda r: any(s["label"] == "RESULT" for s in r["segments"])  # noqa: E731
    variants = {
        "first annotator's Result dropped": [drop(f, rng, "RESULT") for f in firsts if has(f)],
        "second annotator's Result dropped": [drop(s, rng, "RESULT") for s in seconds if has(s)],
        "either annotator's Result dropped": [drop({**f, "segments": union_segments(f, s)}, rng, "RESULT")
                                              for f, s in zip(firsts, seconds) if has(f) or has(s)],
    }
    for name, records in variants.items():
        preds = scorer.score_rows(records)
        zero = sum(p["result_quality"]["score"] == 0 for p in preds)
        print(f"{name:36s} answers {len(records):4d}  scored 0: {zero / len(records):.3f}")


if __name__ == "__main__":
    main()
