"""How far two annotators agree, and where the model stands between them:
``python -m star_scorer.research.agreement --data data/test.jsonl --second data/second_labels/test [--model PATH]``.

The second labels are an independent relabelling of the same answers, made from
LABELING.md without seeing the first. Each ``*.txt`` file under ``--second`` holds
blocks of::

    ### id: t1-0004
    facts: T B NB
    [SITUATION] first segment text
    [ACTION] next segment text

whose segment texts, joined by single spaces, are the answer exactly. The 0-4
score comes from the facts by the rubric, as in the corpus.

The second annotator is scored against the first with the metrics ``make evaluate``
uses, so the figures read on the same scale as the model's: they are the
agreement a model trained on one annotator's labels could be expected to reach
with them if it labelled as well as a second careful person.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from star_scorer.data import as_predictions, load_jsonl, parse_second_labels, second_records  # noqa: F401 - the tools' API
from star_scorer.labels import FACTS, SECTION_LABELS, STAR_LABELS

logger = logging.getLogger(__name__)

def _figures(gold: list[dict], pred: list[dict]) -> dict:
    from star_scorer.jobs.evaluate import slice_metrics
    from star_scorer.metrics import evaluate_predictions

    m = evaluate_predictions(gold, pred)
    return {
        "section_macro_f1": m["section_macro_f1"],
        "per_label_f1": {k: v["f1"] for k, v in m["sections"]["per_label"].items()},
        "qwk": m["qwk"],
        "exact": m["result_quality"]["exact"],
        "within_one": m["result_quality"]["within_one"],
        "facts_f1": {k: v["f1"] for k, v in m["facts"].items()},
        "slices": {k: v["section_macro_f1"] for k, v in slice_metrics(gold, pred).items()},
        "confusion": m["sections"]["confusion"],
    }


def _baseline_predictions(records: list[dict], train_file: str) -> list[dict]:
    """The best baselines of `make baselines`: TF-IDF+LR sentence sections, the rule scorer on their Result."""
    from star_scorer.research.baselines import SentenceSectionBaseline, rule_rows

    return rule_rows(records, SentenceSectionBaseline().fit(load_jsonl(train_file)).predict(records))


def run(data: str, second: str, model: str | None = None, baseline_train: str | None = None) -> dict:
    first = load_jsonl(data)
    other = second_records(first, Path(second))
    pairs = {"second vs first": _figures(first, as_predictions(other))}
    if baseline_train:
        preds = _baseline_predictions(first, baseline_train)
        pairs["baseline vs first"] = _figures(first, preds)
        pairs["baseline vs second"] = _figures(other, preds)
    if model:
        from star_scorer.scorer import StarScorer

        preds = StarScorer.load(model).score_rows(first)
        pairs["model vs first"] = _figures(first, preds)
        pairs["model vs second"] = _figures(other, preds)
    return {"data": data, "second": second, "model": model, "n_answers": len(first), "pairs": pairs}


def markdown(result: dict) -> str:
    pairs = result["pairs"]
    slices = sorted({s for f in pairs.values() for s in f["slices"]})
    lines = [
        f"# Agreement on {result['data']} ({result['n_answers']} answers)",
        "",
        f"Second labels: `{result['second']}`" + (f"; model: `{result['model']}`" if result["model"] else ""),
        "",
        "| pair (predicted vs reference) | sections macro-F1 | " + " | ".join(STAR_LABELS) + " | QWK | exact | within one | "
        + " | ".join(FACTS) + " | " + " | ".join(slices) + " |",
        "|---" * (5 + len(STAR_LABELS) + len(FACTS) + len(slices)) + "|",
    ]
    for name, f in pairs.items():
        cells = [f"{f['section_macro_f1']:.3f}", *(f"{f['per_label_f1'][k]:.3f}" for k in STAR_LABELS),
                 f"{f['qwk']:.3f}", f"{f['exact']:.3f}", f"{f['within_one']:.3f}",
                 *(f"{f['facts_f1'][k]:.3f}" for k in FACTS), *(f"{f['slices'].get(s, float('nan')):.3f}" for s in slices)]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    cm = pairs["second vs first"]["confusion"]
    lines += ["", "Characters, first annotator (rows) against second (columns):", "",
              "| first \\ second | " + " | ".join(SECTION_LABELS) + " |", "|---" * (len(SECTION_LABELS) + 1) + "|"]
    lines += [f"| {SECTION_LABELS[i]} | " + " | ".join(str(c) for c in row) + " |" for i, row in enumerate(cm)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(description="Agreement between two annotators, and the model against each.")
    parser.add_argument("--data", required=True, help="the first labels (a corpus JSONL file)")
    parser.add_argument("--second", required=True, help="folder of second-annotator files (*.txt)")
    parser.add_argument("--model", default=None, help="also score this model against both annotators")
    parser.add_argument("--baselines", default=None, metavar="TRAIN_FILE",
                        help="also score the baselines (sentence TF-IDF+LR sections, rule scorer), fitted on this file")
    parser.add_argument("--out", type=Path, default=None, help="write report.md and agreement.json into this folder")
    args = parser.parse_args(argv)
    result = run(args.data, args.second, args.model, args.baselines)
    text = markdown(result)
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "report.md").write_text(text)
        (args.out / "agreement.json").write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
