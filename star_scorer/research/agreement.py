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
from star_scorer.labels import FACTS, FAILURE_STEPS, SECTION_LABELS, STAR_LABELS

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


def parse_step_labels(folder: Path) -> dict[str, dict[str, list[str]]]:
    """A second annotator's failure steps (``data/briefs/steps-second.md``): every ``*.txt`` under ``folder`` holds
    blocks ``=== <id>``, ``steps: <names or none>``, ``step <name>: <verbatim text>``. Returns id -> {step: texts}."""
    out: dict[str, dict[str, list[str]]] = {}
    current = None
    for path in sorted(Path(folder).glob("*.txt")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.startswith("=== "):
                current = out.setdefault(line[4:].strip(), {})
            elif line.startswith("step ") and current is not None:
                name, _, text = line[5:].partition(": ")
                if name not in FAILURE_STEPS or not text.strip():
                    raise ValueError(f"{path}:{n}: expected 'step <{'|'.join(FAILURE_STEPS)}>: <text>', found {line[:60]!r}")
                current.setdefault(name, []).append(text.strip())
            elif line.strip() and not line.startswith("steps: "):
                raise ValueError(f"{path}:{n}: expected '=== <id>', 'steps: ...' or 'step <name>: <text>', found {line[:60]!r}")
    return out


def step_agreement(first: list[dict], second_steps: dict[str, dict[str, list[str]]], model: str | None = None) -> dict:
    """Failure-step character F1 of the second annotator against the first (the same figure ``make evaluate``
    gives the model), and of the model against each, on the answers both annotated."""
    from star_scorer.data import step_spans
    from star_scorer.metrics import pooled_step_f1, predicted_step_spans

    records = [r for r in first if r["id"] in second_steps and r.get("failure_steps") is not None]
    gold = [step_spans(r) for r in records]
    other = [step_spans(dict(r, failure_steps=second_steps[r["id"]])) for r in records]
    unmatched = sum(len(t) for r in records for t in second_steps[r["id"]].values()) - sum(
        len(v) for spans in other for v in spans.values())
    texts = [r["answer"] for r in records]
    out = {"n_answers": len(records), "unmatched_texts": unmatched, "pairs": {"second vs first": pooled_step_f1(texts, gold, other)}}
    if model:
        from star_scorer.scorer import StarScorer

        rows = StarScorer.load(model, precision="fp32").score_rows(records)
        found = [predicted_step_spans(row) for row in rows]
        out["pairs"] |= {"model vs first": pooled_step_f1(texts, gold, found), "model vs second": pooled_step_f1(texts, other, found)}
    return out


def step_markdown(result: dict) -> str:
    lines = [f"## Failure steps ({result['n_answers']} answers annotated twice; {result['unmatched_texts']} second-annotator "
             "texts not found in their answer)", "",
             "| pair (predicted vs reference) | " + " | ".join(FAILURE_STEPS) + " | mean |", "|---" * (len(FAILURE_STEPS) + 2) + "|"]
    for name, f1 in result["pairs"].items():
        lines.append(f"| {name} | " + " | ".join(f"{f1[s]:.3f}" for s in FAILURE_STEPS) + f" | {sum(f1.values()) / len(f1):.3f} |")
    return "\n".join(lines) + "\n"


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
    parser.add_argument("--steps", type=Path, default=None,
                        help="folder of a second annotator's failure steps (*.txt; default: <--second>-steps when it exists)")
    parser.add_argument("--out", type=Path, default=None, help="write report.md and agreement.json into this folder")
    args = parser.parse_args(argv)
    result = run(args.data, args.second, args.model, args.baselines)
    text = markdown(result)
    steps_dir = args.steps or Path(str(args.second).rstrip("/") + "-steps")
    if steps_dir.is_dir():
        result["steps"] = step_agreement(load_jsonl(args.data), parse_step_labels(steps_dir), args.model)
        text += "\n" + step_markdown(result["steps"])
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "report.md").write_text(text)
        (args.out / "agreement.json").write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
