"""Invariance checks of a trained scorer: ``python -m star_scorer.research.robustness --data data/test.jsonl [--model ...]``.

Label-preserving edits (discourse markers removed, lowercased and unpunctuated,
fillers inserted, a movable section moved) must keep >= 95% of characters'
labels and the score within one level on >= 95% of answers. An answer with its
Result removed must score 0, and one whose Result is replaced by a vague claim
at most 1, on >= 95% of answers. The score must not follow the Result's length or
the form of its numbers: padding a Result with neutral sentences (lessons,
reflections; a list never used in training) may change the score on at most 5%
of answers, and taking the number out of its downstream-effect clause (the
writers' own rewrite, ``unquantified``) must turn NB off on at least 90% of the
answers where the model had it on.

Labels kept: for every original segment, the share of its characters given each
label before and after the edit; the overlap of the two distributions, weighted
by segment length (edits change the text, so characters are compared per segment).
"""

from __future__ import annotations

import argparse
import json
import logging
import random
from collections import Counter
from pathlib import Path

from star_scorer.data import load_jsonl, segment_spans
from star_scorer.datatools.counterfactual import pad, read_lines
from star_scorer.jobs.augment import drop, fillers, markers, reorder, transcript, vague
from star_scorer.metrics import predicted_char_labels
from star_scorer.paths import DATA_DIR
from star_scorer.rewrites import NB_OFF_AT_LEAST, unquantified

logger = logging.getLogger(__name__)

INVARIANT = {"markers": markers, "transcript": transcript, "fillers": fillers, "reorder": reorder}
TARGET = 0.95
PAD_CHANGED_AT_MOST = 0.05
NEUTRAL_CHECK = DATA_DIR / "counterfactual" / "neutral_check.txt"


def _segment_label_shares(record: dict, sections: list[dict]) -> dict[int, tuple[int, Counter]]:
    """src index -> (non-space chars, Counter of predicted labels over them)."""
    pred = predicted_char_labels(record["answer"], sections)
    out = {}
    for i, (seg, span) in enumerate(zip(record["segments"], segment_spans(record["segments"]))):
        src = seg.get("src", i)
        if src is None:
            continue
        labels = Counter(int(pred[c]) for c in range(span.start, span.end) if not record["answer"][c].isspace())
        out[src] = (sum(labels.values()), labels)
    return out


def labels_kept(orig: dict, orig_pred: dict, new: dict, new_pred: dict) -> tuple[float, int]:
    """(overlap of predicted-label distributions per segment, weight in characters)."""
    a = _segment_label_shares({**orig, "segments": [dict(s, src=i) for i, s in enumerate(orig["segments"])]}, orig_pred["sections"])
    b = _segment_label_shares(new, new_pred["sections"])
    kept = total = 0.0
    for src, (n, dist) in a.items():
        if src not in b or n == 0 or b[src][0] == 0:
            continue
        m = b[src][0]
        kept += n * sum(min(dist[k] / n, b[src][1][k] / m) for k in dist)
        total += n
    return kept, int(total)


def run(data: str, model: str | None = None, seed: int = 0, limit: int = 0) -> dict:
    from star_scorer.scorer import StarScorer

    records = load_jsonl(data)
    if limit:
        records = records[:limit]
    scorer = StarScorer.load(model)
    base = scorer.score_rows(records)
    rng = random.Random(seed)
    figures: dict[str, dict] = {}
    for name, fn in INVARIANT.items():
        edited = [fn(r, rng) for r in records]
        idx = [i for i, e in enumerate(edited) if e["answer"] != records[i]["answer"]]
        preds = scorer.score_rows([edited[i] for i in idx])
        kept = total = 0.0
        within = 0
        for i, p in zip(idx, preds):
            k, t = labels_kept(records[i], base[i], edited[i], p)
            kept += k
            total += t
            within += abs(p["result_quality"]["score"] - base[i]["result_quality"]["score"]) <= 1
        figures[name] = {"answers": len(idx), "labels_kept": kept / max(total, 1), "score_within_one": within / max(len(idx), 1)}
    with_result = [r for r in records if any(s["label"] == "RESULT" for s in r["segments"])]
    removed = scorer.score_rows([drop(r, rng, label="RESULT") for r in with_result])
    figures["result_removed"] = {"answers": len(with_result), "scores_0": sum(p["result_quality"]["score"] == 0 for p in removed) / max(len(removed), 1)}
    vagued = scorer.score_rows([vague(r, rng) for r in with_result])
    figures["result_vague"] = {"answers": len(with_result), "scores_at_most_1": sum(p["result_quality"]["score"] <= 1 for p in vagued) / max(len(vagued), 1)}
    figures |= length_and_number_checks(scorer, records, base, rng)
    checks = {f"{n}: labels kept >= {TARGET}": figures[n]["labels_kept"] >= TARGET for n in INVARIANT}
    checks |= {f"{n}: score within one >= {TARGET}": figures[n]["score_within_one"] >= TARGET for n in INVARIANT}
    checks["result removed: scores 0"] = figures["result_removed"]["scores_0"] >= TARGET
    checks["result vague: scores <= 1"] = figures["result_vague"]["scores_at_most_1"] >= TARGET
    checks[f"result padded: score changed <= {PAD_CHANGED_AT_MOST}"] = figures["result_padded"]["score_changed"] <= PAD_CHANGED_AT_MOST
    checks[f"number removed: NB off >= {NB_OFF_AT_LEAST}"] = figures["number_removed"]["nb_off"] >= NB_OFF_AT_LEAST
    return {"data": data, "figures": figures, "checks": checks, "all_pass": all(checks.values())}


def padded_rows(scorer, records: list[dict], base: list[dict], rng: random.Random) -> tuple[list[int], list[dict]]:
    """The answers with a Result that scored without error (their indexes), and their rows once one to three
    sentences of ``NEUTRAL_CHECK`` are added to the Result."""
    neutral = read_lines(NEUTRAL_CHECK)
    idx = [i for i, r in enumerate(records) if any(s["label"] == "RESULT" for s in r["segments"]) and not base[i]["error"]]
    return idx, scorer.score_rows([pad(records[i], rng, neutral) for i in idx])


def length_and_number_checks(scorer, records: list[dict], base: list[dict], rng: random.Random) -> dict:
    """The Result padded with neutral sentences (score changed?) and its NB clauses unquantified (NB off?)."""
    idx, padded = padded_rows(scorer, records, base, rng)
    changed = sum(p["result_quality"]["score"] != base[i]["result_quality"]["score"] for i, p in zip(idx, padded))
    copies = [(i, unquantified(r, rng)) for i, r in enumerate(records) if not base[i]["error"]]
    copies = [(i, c) for i, c in copies if c is not None]
    preds = scorer.score_rows([c for _, c in copies])
    had = [(i, p) for (i, _), p in zip(copies, preds) if base[i]["result_quality"]["facts"]["NB"] >= 0.5 and not p["error"]]
    nb_off = sum(p["result_quality"]["facts"]["NB"] < 0.5 or p["result_quality"]["facts"]["B"] < 0.5 for _, p in had)
    b_kept = sum(p["result_quality"]["facts"]["B"] >= 0.5 for _, p in had)
    return {
        "result_padded": {"answers": len(idx), "score_changed": changed / max(len(idx), 1)},
        "number_removed": {"answers": len(copies), "model_had_nb": len(had), "nb_off": nb_off / max(len(had), 1),
                           "b_kept": b_kept / max(len(had), 1)},
    }


def main(argv: list[str] | None = None) -> dict:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(description="Invariance checks of a trained STAR scorer.")
    parser.add_argument("--data", required=True)
    parser.add_argument("--model", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=0, help="first N answers only (0: all)")
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    result = run(args.data, args.model, args.seed, args.limit)
    for name, f in result["figures"].items():
        print(f"{name:15s} " + "  ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in f.items()))
    for name, ok in result["checks"].items():
        print(f"[{'PASS' if ok else 'FAIL'}] {name}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
