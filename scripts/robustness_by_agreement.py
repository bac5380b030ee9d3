"""Labels kept under the robustness edits, split by whether two annotators agree on the text.

    python scripts/robustness_by_agreement.py [--model models/...] [--data data/test.jsonl] [--second data/second_labels/test]

`make robustness` asks that an edit (lowercased and unpunctuated, a section moved,
...) keep >= 95% of the characters' predicted labels. This computes the same figure
(pipeline.robustness.labels_kept) separately over the first annotator's segments
that the second annotator labels the same way (>= 90% of their characters) and
over the segments the two annotators label differently.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from pipeline.agreement import second_records
from pipeline.data import load_jsonl, segment_spans
from pipeline.features import char_labels
from pipeline.labels import LABEL2ID
from pipeline.predictor import StarScorer
from pipeline.robustness import INVARIANT, labels_kept


def disputed_segments(first: dict, second: dict, share: float = 0.9) -> set[int]:
    """Indices of first's segments whose characters the second annotator labels the same way less than ``share`` of the time."""
    theirs = char_labels(second["answer"], second["segments"])
    out = set()
    for i, (seg, span) in enumerate(zip(first["segments"], segment_spans(first["segments"]))):
        chars = [c for c in range(span.start, span.end) if not first["answer"][c].isspace()]
        same = sum(theirs[c] == LABEL2ID[seg["label"]] for c in chars)
        if chars and same / len(chars) < share:
            out.add(i)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--data", default="data/test.jsonl")
    parser.add_argument("--second", default="data/second_labels/test")
    args = parser.parse_args()
    firsts = load_jsonl(args.data)
    disputed = [disputed_segments(f, s) for f, s in zip(firsts, second_records(firsts, Path(args.second)))]
    n_seg = sum(len(f["segments"]) for f in firsts)
    print(f"segments the annotators label differently: {sum(map(len, disputed))} of {n_seg}")
    scorer = StarScorer.load(args.model)
    base = scorer.score_rows(firsts)
    rng = random.Random(0)  # the robustness harness's seed and order of edits
    for name, edit in INVARIANT.items():
        edited = [edit(r, rng) for r in firsts]
        idx = [i for i, e in enumerate(edited) if e["answer"] != firsts[i]["answer"]]
        preds = scorer.score_rows([edited[i] for i in idx])
        sums = {"agreed": [0.0, 0], "disputed": [0.0, 0]}
        for i, pred in zip(idx, preds):
            for j in range(len(firsts[i]["segments"])):
                kept, total = labels_kept(firsts[i], base[i], _only_src(edited[i], j), pred)
                key = "disputed" if j in disputed[i] else "agreed"
                sums[key][0] += kept
                sums[key][1] += total
        print(f"{name:11s} " + "  ".join(f"{k}: labels kept {v[0] / max(v[1], 1):.3f} ({v[1]} chars)" for k, v in sums.items()))


def _only_src(record: dict, src: int) -> dict:
    """``record`` with every segment but the one that came from original segment ``src`` unlinked from its source."""
    return {**record, "segments": [dict(s, src=s.get("src") if s.get("src") == src else None) for s in record["segments"]]}


if __name__ == "__main__":
    main()
