"""Evaluate a trained scorer on labelled answers:
``python -m star_scorer.jobs.evaluate --data data/test.jsonl [--model PATH_OR_URI] [--format md|html]``.

Writes ``metrics.json``, ``report.md`` (and, with ``--format html``, the self-contained page of
``star_scorer.jobs.report_page`` as ``report.html``) and confusion-matrix PNGs under reports/, and logs them to MLflow. Baseline figures, when a
``reports/baselines/<data>.json`` exists (``make baselines``, which ``make evaluate`` runs first), sit beside the model's,
and so does a second annotator's agreement with the gold labels when the data
file has second labels beside it (``<folder>/second_labels/<stem>/``, ``make agreement``).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from star_scorer.jobs.report_page import confusion_png, length_band
from star_scorer.labels import FACTS, FAILURE_STEPS, SECTION_LABELS, STAR_LABELS
from star_scorer.paths import data_name

logger = logging.getLogger(__name__)


def _markdown(report: dict, title: str, data_file: str, model: str, baselines: dict | None, human: dict | None = None) -> str:
    s, q = report["sections"], report["result_quality"]
    lines = [
        f"# {title}",
        "",
        f"- data: `{data_file}` ({report['n_answers']} answers, {report['n_errors']} scoring errors)",
        f"- model: `{model}`",
        f"- written: {time.strftime('%Y-%m-%d %H:%M:%S')}",
        "",
        "## Headline",
        "",
        "| system | section macro-F1 (S,T,A,R) | QWK | exact | within one |",
        "|---|---|---|---|---|",
        f"| this model | {s['macro_f1']:.3f} | {q['qwk']:.3f} | {q['exact']:.3f} | {q['within_one']:.3f} |",
    ]
    for name, b in (baselines or {}).items():
        if "qwk" not in b:  # the story baseline has its own table below
            continue
        fmt = lambda v: f"{v:.3f}" if isinstance(v, (int, float)) else "-"  # noqa: E731
        lines.append(f"| baseline: {name} | {fmt(b.get('section_macro_f1'))} | {fmt(b.get('qwk'))} | {fmt(b.get('exact'))} | {fmt(b.get('within_one'))} |")
    if human:
        lines.append(f"| a second annotator against the gold labels (`make agreement`) | {human['section_macro_f1']:.3f} | "
                     f"{human['qwk']:.3f} | {human['exact']:.3f} | {human['within_one']:.3f} |")
        lines += ["", "The last row is how far two people labelling from `LABELING.md` agree on these answers "
                  f"(TASK F1 {human['per_label_f1']['TASK']:.3f}). A model above it has learned the gold annotator's own "
                  "conventions, which other annotators need not share."]
    lines += ["", "## Sections (character level, whitespace ignored)", "", "| label | precision | recall | F1 | gold chars |", "|---|---|---|---|---|"]
    for label in SECTION_LABELS:
        m = s["per_label"][label]
        lines.append(f"| {label} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {m['support_chars']} |")
    lines += ["", f"Macro-F1 over {', '.join(STAR_LABELS)}: **{s['macro_f1']:.3f}**; over all five: {s['macro_f1_all5']:.3f}; char accuracy {s['char_accuracy']:.3f}.", ""]
    lines += ["## Result quality (0-4)", "", f"QWK **{q['qwk']:.3f}**, exact {q['exact']:.3f}, within one {q['within_one']:.3f}.", "",
              "Confusion (rows gold, columns predicted):", "", "| gold \\ pred | 0 | 1 | 2 | 3 | 4 |", "|---|---|---|---|---|---|"]
    for i, row in enumerate(q["confusion"]):
        lines.append(f"| {i} | " + " | ".join(str(v) for v in row) + " |")
    lines += ["", "## Rubric facts", "", "| fact | F1 | gold positives |", "|---|---|---|"]
    for fact in FACTS:
        lines.append(f"| {fact} | {report['facts'][fact]['f1']:.3f} | {report['facts'][fact]['positives']} |")
    ev = report.get("evidence") or {}
    if ev.get("answers"):
        lines += ["", "## Evidence", "",
                  f"Character F1 of each fact's evidence span against the gold clauses, over {ev['answers']} answers whose "
                  f"evidence is known: **{ev['char_f1']:.3f}** (a missed or wrongly claimed fact counts against it); "
                  f"where both say the fact holds, {ev['located_char_f1']:.3f}.", "",
                  "| fact | evidence char F1 |", "|---|---|"]
        lines += [f"| {fact} | {ev['per_fact'][fact]:.3f} |" for fact in FACTS]
    if report.get("story"):
        lines += _story_lines(report["story"], (baselines or {}).get("tfidf-lr story"))
    if report.get("slices"):
        lines += ["", "## Slices", "", "| slice | answers | section macro-F1 | TASK F1 | QWK |", "|---|---|---|---|---|"]
        for name, m in report["slices"].items():
            lines.append(f"| {name} | {m['n_answers']} | {m['section_macro_f1']:.3f} | {m['task_f1']:.3f} | {m['qwk']:.3f} |")
    lines += ["", "![sections](confusion_sections.png) ![scores](confusion_scores.png)", ""]
    return "\n".join(lines)


def _story_lines(story: dict, baseline: dict | None) -> list[str]:
    fmt = lambda v: f"{v:.3f}" if isinstance(v, (int, float)) else "-"  # noqa: E731
    lines = ["", "## Story type, competency, failure steps", "",
             f"Over {story['n_answers']} answers labelled with a story type; step spans over the {story['n_step_annotated']} "
             "annotated for steps (character F1, whitespace ignored).", "",
             "| system | story type acc | competency top-1 | top-2 | " + " | ".join(f"{s} F1" for s in FAILURE_STEPS) + " |",
             "|---|---|---|---|" + "---|" * len(FAILURE_STEPS)]
    for name, f in (("this model", story), ("baseline: TF-IDF + logistic regression", baseline)):
        if f:
            lines.append(f"| {name} | {fmt(f['story_type_accuracy'])} | {fmt(f['competency_top1'])} | {fmt(f['competency_top2'])} | "
                         + " | ".join(fmt(f["step_char_f1"][s]) for s in FAILURE_STEPS) + " |")
    return lines


def write_report(
    report: dict, out_dir: Path, title: str, data_file: str, model: str, fmt: str = "md", baselines: dict | None = None,
    human: dict | None = None, html_page: str | None = None,
) -> list[Path]:
    """``metrics.json``, the confusion PNGs and ``report.md``; with ``fmt="html"`` also ``report.html`` (``html_page``)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics_path = out_dir / "metrics.json"
    metrics_path.write_text(json.dumps(report | {"baselines": baselines or {}, "human_agreement": human}, indent=2))
    files = [
        metrics_path,
        confusion_png(report["sections"]["confusion"], list(SECTION_LABELS), "Sections (row-normalised)", out_dir / "confusion_sections.png"),
        confusion_png(report["result_quality"]["confusion"], [str(i) for i in range(5)], "Result score (row-normalised)", out_dir / "confusion_scores.png"),
    ]
    text = _markdown(report, title, data_file, model, baselines, human)
    page = out_dir / "report.md"
    page.write_text(text)
    if fmt == "html":
        if html_page is None:
            raise ValueError("expected the page's HTML for --format html (star_scorer.jobs.report_page.page), found none")
        page = out_dir / "report.html"
        page.write_text(html_page)
    return [*files, page]


def slice_metrics(records: list[dict], predictions: list[dict]) -> dict:
    """Figures per style, per length band (words) and, where the data says, per variant of the Result."""
    from star_scorer.metrics import evaluate_predictions

    groups: dict[str, list[int]] = {}
    for i, rec in enumerate(records):
        groups.setdefault(f"style={rec.get('style', 'unknown')}", []).append(i)
        groups.setdefault(f"words={length_band(rec['answer'])}", []).append(i)
        if rec.get("variant"):
            groups.setdefault(f"variant={rec['variant']}", []).append(i)
    out = {}
    for name, idx in sorted(groups.items()):
        m = evaluate_predictions([records[i] for i in idx], [predictions[i] for i in idx])
        out[name] = {"n_answers": len(idx), "section_macro_f1": m["section_macro_f1"],
                     "task_f1": m["sections"]["per_label"]["TASK"]["f1"], "qwk": m["qwk"]}
    return out


def run(
    data: str,
    model: str | None = None,
    out_dir: str | None = None,
    fmt: str = "md",
    max_windows: int = 16,
    log_to_mlflow: bool = True,
) -> dict:
    from star_scorer.data import load_jsonl
    from star_scorer.metrics import evaluate_predictions, story_metrics
    from star_scorer.paths import REPORTS_DIR
    from star_scorer.scorer import StarScorer, resolve_model_dir

    records = load_jsonl(data)
    model_dir = resolve_model_dir(model)
    scorer = StarScorer.load(model_dir, precision="fp32")  # the reference figures; bf16 is within 0.001 (make bench)
    started = time.time()
    preds = scorer.score_rows(records, max_windows=max_windows)
    seconds = time.time() - started
    report = evaluate_predictions(records, preds)
    report["slices"] = slice_metrics(records, preds)
    report["story"] = story_metrics(records, preds)
    report["scoring_seconds"] = seconds
    target = Path(out_dir) if out_dir else REPORTS_DIR / Path(model_dir).name / data_name(data)
    baseline_figures = baselines_for(data)
    human = human_agreement(data)
    page = None
    if fmt == "html":
        from star_scorer.jobs import report_page
        from star_scorer.jobs.promote import RULE

        this = {"label": Path(model_dir).name, "predictions": preds, "figures": report_page.set_figures(records, preds)}
        page = report_page.page(f"Evaluation on {Path(data).name}", data, this, records, baselines=baseline_figures, human=human,
                                rule=RULE, note="make report puts the champion beside the model on every labelled set.")
    files = write_report(report, target, f"Evaluation on {Path(data).name}", data, str(model_dir), fmt=fmt,
                         baselines=baseline_figures, human=human, html_page=page)
    if log_to_mlflow:
        import mlflow

        from star_scorer import tracking

        tracking.setup("star-scorer-evaluation")
        with mlflow.start_run(run_name=f"eval-{Path(model_dir).name}-{Path(data).stem}"):
            mlflow.log_params({"data": data, "model": str(model_dir), "n_answers": len(records)})
            mlflow.log_metrics({"section_macro_f1": report["section_macro_f1"], "qwk": report["qwk"],
                                "exact": report["result_quality"]["exact"], "within_one": report["result_quality"]["within_one"],
                                "evidence_char_f1": report["evidence"]["char_f1"],
                                **{f"f1_{k}": v["f1"] for k, v in report["sections"]["per_label"].items()},
                                **{f"fact_f1_{k}": v["f1"] for k, v in report["facts"].items()}})
            for f in files:
                mlflow.log_artifact(str(f), artifact_path="report")
    logger.info("section macro-F1 %.3f, QWK %.3f; report in %s", report["section_macro_f1"], report["qwk"], target)
    return {"report_dir": str(target), "files": [str(f) for f in files], **{k: report[k] for k in ("section_macro_f1", "qwk", "combined")},
            "task_f1": report["sections"]["per_label"]["TASK"]["f1"],
            "exact": report["result_quality"]["exact"], "within_one": report["result_quality"]["within_one"],
            "facts_f1": {k: v["f1"] for k, v in report["facts"].items()}, "evidence_char_f1": report["evidence"]["char_f1"]}


def human_agreement(data: str) -> dict | None:
    """A second annotator's figures against ``data``'s labels: from ``<data's folder>/second_labels/<data's stem>/``
    (``make agreement``'s files), or from ``second_sections.jsonl`` and ``second_results.jsonl`` beside ``data``
    (the real-world set's: the second annotator's segments and the second rater's facts, each for a subset)."""
    folder = Path(data).parent
    if (folder / "second_sections.jsonl").exists() and (folder / "second_results.jsonl").exists():
        return _second_files_agreement(data, folder / "second_sections.jsonl", folder / "second_results.jsonl")
    second = folder / "second_labels" / Path(data).stem
    if not second.is_dir():
        return None
    from star_scorer.data import as_predictions, load_jsonl, second_records
    from star_scorer.metrics import evaluate_predictions

    first = load_jsonl(data)
    m = evaluate_predictions(first, as_predictions(second_records(first, second)))
    return {"section_macro_f1": m["section_macro_f1"], "per_label_f1": {k: v["f1"] for k, v in m["sections"]["per_label"].items()},
            "qwk": m["qwk"], "exact": m["result_quality"]["exact"], "within_one": m["result_quality"]["within_one"]}


def _second_files_agreement(data: str, sections_file: Path, results_file: Path) -> dict:
    from star_scorer.data import load_jsonl, segment_spans
    from star_scorer.metrics import quality_metrics, section_metrics

    gold = {r["id"]: r for r in load_jsonl(data)}
    second_sections = [json.loads(line) for line in sections_file.read_text().splitlines() if line.strip()]
    recs, preds = [], []
    for row in second_sections:
        spans = segment_spans(row["segments"])
        recs.append(gold[row["id"]])
        preds.append({"sections": [{"label": s.label, "start": s.start, "end": s.end} for s in spans]})
    sections = section_metrics(recs, preds)
    results = [json.loads(line) for line in results_file.read_text().splitlines() if line.strip()]
    quality = quality_metrics([gold[r["id"]]["result_quality"] for r in results], [r["result_quality"] for r in results])
    return {"section_macro_f1": sections["macro_f1"], "per_label_f1": {k: v["f1"] for k, v in sections["per_label"].items()},
            "qwk": quality["qwk"], "exact": quality["exact"], "within_one": quality["within_one"],
            "answers_sections": len(recs), "answers_results": len(results)}


def baselines_for(data: str) -> dict | None:
    """The baselines' figures on ``data``, when ``make baselines`` (research) has written them."""
    from star_scorer.paths import REPORTS_DIR

    path = REPORTS_DIR / "baselines" / f"{data_name(data)}.json"
    return json.loads(path.read_text()) if path.exists() else None


def main(argv: list[str] | None = None) -> dict:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(description="Evaluate a trained STAR scorer on labelled answers.")
    parser.add_argument("--data", required=True, help="labelled JSONL (the dataset schema)")
    parser.add_argument("--model", default=None, help="model folder or models:/ URI (default: newest under models/, else @champion)")
    parser.add_argument("--out", default=None, help="report folder (default: reports/<model>/<data>)")
    parser.add_argument("--format", choices=("md", "html"), default="md")
    parser.add_argument("--max-windows", type=int, default=16)
    parser.add_argument("--no-mlflow", action="store_true", help="do not log the report to MLflow")
    args = parser.parse_args(argv)
    result = run(args.data, args.model, args.out, args.format, args.max_windows, not args.no_mlflow)
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
