"""The robustness checks read against two annotators' labels.

    python scripts/robustness_vs_agreement.py [--model models/...] [--data data/test.jsonl] [--second data/second_labels/test]

`make robustness` holds the model to the first annotator's labels. This asks how
much of each shortfall lies where a second careful annotator reads the text
differently:

- Labels kept under each edit (star_scorer.research.robustness.labels_kept, same edits and
  seed), separately over the first annotator's segments that the second labels
  the same way (>= 90% of their characters) and over the segments they dispute.
- Result removed -> 0: drop the first annotator's Result, the second's, and
  the union of both (text that either calls RESULT), and print the share of
  answers scored 0 after each. Outcome text the first annotator called ACTION
  but the second calls RESULT stays in the answer in the harness's version.
- People on Result-removed answers (``--removed``): answers with the first
  annotator's Result dropped, labelled afresh by readers who never saw them
  whole; the share in which a reader still finds a RESULT, split by whether the
  model scores the answer 0.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from star_scorer.data import load_jsonl, segment_spans
from star_scorer.jobs.augment import drop
from star_scorer.labels import LABEL2ID
from star_scorer.research.agreement import as_predictions, second_records
from star_scorer.research.robustness import INVARIANT, _segment_label_shares, labels_kept
from star_scorer.scorer import StarScorer


def disputed_segments(first: dict, second: dict, share: float = 0.9) -> set[int]:
    """Indices of first's segments whose characters the second annotator labels the same way less than ``share`` of the time."""
    theirs = _segment_label_shares(first, as_predictions([second])[0]["sections"])
    return {i for i, seg in enumerate(first["segments"])
            if theirs[i][0] and theirs[i][1][LABEL2ID[seg["label"]]] / theirs[i][0] < share}


def _only_src(record: dict, src: int) -> dict:
    """``record`` with every segment but the one that came from original segment ``src`` unlinked from its source."""
    return {**record, "segments": [dict(s, src=s.get("src") if s.get("src") == src else None) for s in record["segments"]]}


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


def labels_kept_by_agreement(scorer: StarScorer, firsts: list[dict], seconds: list[dict]) -> None:
    disputed = [disputed_segments(f, s) for f, s in zip(firsts, seconds)]
    n_seg = sum(len(f["segments"]) for f in firsts)
    print(f"segments the annotators label differently: {sum(map(len, disputed))} of {n_seg}")
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


def result_removed_by_agreement(scorer: StarScorer, firsts: list[dict], seconds: list[dict]) -> float:
    """Print the share scored 0 after each way of removing the Result; return it for the harness's way."""
    rng = random.Random(0)

    def has(r: dict) -> bool:
        return any(s["label"] == "RESULT" for s in r["segments"])

    variants = {
        "first annotator's Result dropped": [drop(f, rng, "RESULT") for f in firsts if has(f)],
        "second annotator's Result dropped": [drop(s, rng, "RESULT") for s in seconds if has(s)],
        "either annotator's Result dropped": [drop({**f, "segments": union_segments(f, s)}, rng, "RESULT")
                                              for f, s in zip(firsts, seconds) if has(f) or has(s)],
    }
    shares = {}
    for name, records in variants.items():
        preds = scorer.score_rows(records)
        shares[name] = sum(p["result_quality"]["score"] == 0 for p in preds) / len(records)
        print(f"{name:36s} answers {len(records):4d}  scored 0: {shares[name]:.3f}")
    return shares["first annotator's Result dropped"]


def readers_on_removed(scorer: StarScorer, removed: str, model_zero_share: float) -> None:
    """Do people find a Result in answers whose gold Result was removed? Split by what the model says.

    The sample holds as many answers the model scores 0 as answers it does not, so the share
    a reader would score 0 over all Result-removed answers is re-weighted by ``model_zero_share``.
    """
    records = load_jsonl(removed)
    readers = sorted(p for p in (Path(removed).parent / Path(removed).stem).iterdir() if p.is_dir())
    found = {p.name: [any(s["label"] == "RESULT" for s in r["segments"]) for r in second_records(records, p)] for p in readers}
    preds = scorer.score_rows(records)
    model = [p["result_quality"]["score"] != 0 for p in preds]
    finds = {}
    for label, want in (("model finds a Result", True), ("model scores 0", False)):
        idx = [i for i, m in enumerate(model) if m == want]
        finds[want] = {n: sum(f[i] for i in idx) / max(len(idx), 1) for n, f in found.items()}
        each = "  ".join(f"reader {n}: {v:.2f}" for n, v in finds[want].items())
        both = sum(all(f[i] for f in found.values()) for i in idx) / max(len(idx), 1)
        either = sum(any(f[i] for f in found.values()) for i in idx) / max(len(idx), 1)
        print(f"{label:22s} answers {len(idx):3d}  a reader labels some text RESULT: {each}  both: {both:.2f}  either: {either:.2f}")
    agree = sum(len({f[i] for f in found.values()}) == 1 for i in range(len(records))) / len(records)
    estimate = {n: model_zero_share * (1 - finds[False][n]) + (1 - model_zero_share) * (1 - finds[True][n]) for n in found}
    print(f"readers agree on whether there is a Result: {agree:.2f}; share of all Result-removed answers a reader "
          "would score 0 (re-weighted): " + "  ".join(f"reader {n}: {v:.2f}" for n, v in estimate.items())
          + f"  (the model: {model_zero_share:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--data", default="data/test.jsonl")
    parser.add_argument("--second", default="data/second_labels/test")
    parser.add_argument("--removed", default="data/second_labels/result_removed.jsonl",
                        help="answers with the gold Result removed; readers' labels of them in <folder>/<stem>/<reader>/")
    args = parser.parse_args()
    firsts = load_jsonl(args.data)
    seconds = second_records(firsts, Path(args.second))
    scorer = StarScorer.load(args.model)
    labels_kept_by_agreement(scorer, firsts, seconds)
    model_zero_share = result_removed_by_agreement(scorer, firsts, seconds)
    if Path(args.removed).exists():
        readers_on_removed(scorer, args.removed, model_zero_share)


if __name__ == "__main__":
    main()
