"""Evaluation reports people read: ``python -m star_scorer.jobs.report [--model PATH_OR_URI] [--data FILE ...]``.

For one model and each labelled set (default: every one of ``default_data()`` that exists), scores the set with
the model and with the registered ``@champion`` (left out when there is none, or when it is this very model),
and writes under ``reports/<model>/<data>/``: ``report.html`` (one self-contained page, ``report_page``),
``report.md``, ``metrics.json``, ``intervals.json`` and the confusion PNGs; then ``reports/<model>/index.html``
linking the sets. One MLflow run (experiment ``star-scorer-evaluation``) logs the datasets as run inputs, each
figure with its interval (against the model's LoggedModel when the model is a registered version) and the pages.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import time
from pathlib import Path

from star_scorer.jobs import promote, report_page
from star_scorer.jobs.evaluate import baselines_for, human_agreement, write_report
from star_scorer.paths import DATA_DIR, REGISTERED_MODEL_NAME, data_name

logger = logging.getLogger(__name__)


def default_data() -> list[str]:
    """Every labelled set there is: the real-world answers first (the figures that matter), dev, the blind test, other writers."""
    candidates = (promote.REALWORLD, DATA_DIR / "dev.jsonl", DATA_DIR / "test.jsonl", DATA_DIR / "other_writers.jsonl")
    return [str(p) for p in candidates if p.exists()]


def fingerprint(model_dir: Path) -> str:
    """The weights and the decoding settings: two folders with the same fingerprint score every answer alike."""
    digest = hashlib.sha256()
    for name in ("model.safetensors", "scorer_config.json"):
        path = Path(model_dir) / name
        if path.exists():
            with path.open("rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()


def _registered(spec: str | None, model_dir: Path, name: str) -> tuple[object | None, object | None, Path | None]:
    """(this model's registered version or None, the champion's version or None, the champion's folder or None)."""
    from star_scorer.tracking import download_model

    champion = promote.alias_version(name, promote.CHAMPION)
    champion_dir = download_model(f"models:/{name}/{champion.version}") if champion else None
    this = None
    if spec and str(spec).startswith("models:/"):
        target = str(spec)[len("models:/"):]
        if "@" in target:
            this = promote.alias_version(*target.split("@", 1))
        else:
            import mlflow

            from star_scorer.tracking import tracking_uri

            reg, _, version = target.rpartition("/")
            this = mlflow.MlflowClient(tracking_uri(), registry_uri=tracking_uri()).get_model_version(reg, version)
    mine = fingerprint(model_dir)
    if this is None and champion_dir is not None and fingerprint(champion_dir) == mine:
        this = champion
    if this is None:
        challenger = promote.alias_version(name, promote.CHALLENGER)
        if challenger is not None and fingerprint(download_model(f"models:/{name}/{challenger.version}")) == mine:
            this = challenger
    return this, champion, champion_dir


def run(model: str | None = None, data: list[str] | None = None, out_root: str | None = None, max_windows: int = 16,
        log_to_mlflow: bool = True, name: str = REGISTERED_MODEL_NAME, with_champion: bool = True, gallery: int = report_page.GALLERY) -> dict:
    from star_scorer import intervals, tracking
    from star_scorer.data import load_jsonl
    from star_scorer.metrics import evaluate_predictions
    from star_scorer.paths import REPORTS_DIR
    from star_scorer.scorer import StarScorer, resolve_model_dir

    tracking.setup("star-scorer-evaluation")
    model_dir = resolve_model_dir(model)
    this_version, champion, champion_dir = _registered(model, model_dir, name) if with_champion else (None, None, None)
    if model and str(model).startswith("models:/"):
        label = tracking.describe_model_uri(str(model))
    else:
        label = model_dir.name + (f" ({name} v{this_version.version})" if this_version is not None else "")
    folder = label.split(" (")[0].replace(" ", "-")
    root = Path(out_root) if out_root else REPORTS_DIR / folder
    same = champion is not None and this_version is not None and this_version.version == champion.version
    note = None
    if champion is None and with_champion:
        note = f"No @{promote.CHAMPION} in the store ({tracking.tracking_uri()}): no champion column."
    elif same:
        note = f"This model is @{promote.CHAMPION} ({name} v{champion.version}): no champion column."
    use_champion = champion is not None and not same
    champion_label = f"{name} v{champion.version}" if champion is not None else None

    scorer = StarScorer.load(model_dir, precision="fp32")
    champion_scorer = StarScorer.load(champion_dir, precision="fp32") if use_champion else None
    sets = data or default_data()
    results, index_rows, pages = {}, [], []
    for path in sets:
        started = time.time()
        records = load_jsonl(path)
        key = data_name(path)
        preds = scorer.score_rows(records, max_windows=max_windows)
        this = {"label": label, "predictions": preds, "figures": report_page.set_figures(records, preds)}
        champ = None
        if champion_scorer is not None:
            champ_preds = champion_scorer.score_rows(records, max_windows=max_windows)
            champ = {"label": champion_label, "predictions": champ_preds, "figures": report_page.set_figures(records, champ_preds),
                     "paired": intervals.paired(records, preds, champ_preds)}
        baselines, human = baselines_for(path), human_agreement(path)
        page = report_page.page(f"{label} on {key}", path, this, records, champion=champ, baselines=baselines, human=human,
                                rule=promote.RULE, note=note, n_gallery=gallery)
        report = evaluate_predictions(records, preds)
        target = root / key
        files = write_report(report, target, f"{label} on {key}", path, str(model_dir), fmt="html", baselines=baselines,
                             human=human, html_page=page)
        figures = {k: v.as_dict() for k, v in this["figures"]["intervals"].items()}
        summary = {"data": str(path), "n_answers": len(records), "n_errors": report["n_errors"], "model": label,
                   "champion": champion_label if champ else None, "intervals": figures,
                   "calibration": this["figures"]["calibration"],
                   "slices": {s: {k: (v.as_dict() if isinstance(v, intervals.Interval) else v) for k, v in m.items()}
                              for s, m in this["figures"]["slices"].items()}}
        if champ:
            summary["champion_intervals"] = {k: v.as_dict() for k, v in champ["figures"]["intervals"].items()}
            summary["difference"] = {k: v["difference"].as_dict() for k, v in champ["paired"].items()}
            summary["promotion_losses"] = promote.decide({key: {k: v["difference"] for k, v in champ["paired"].items()}})[1]
        (target / "intervals.json").write_text(json.dumps(summary, indent=2))
        files.append(target / "intervals.json")
        results[key] = {"records": records, "this": this, "champion": champ, "files": files, "summary": summary}
        index_rows.append({"name": key, "href": f"{key}/report.html", "n_answers": len(records), "intervals": this["figures"]["intervals"],
                           "difference": {k: v["difference"] for k, v in champ["paired"].items()} if champ else None})
        pages.append(target / "report.html")
        iv = this["figures"]["intervals"]
        logger.info("%s: section macro-F1 %s, QWK %s (%.0f s); %s", key, _text(iv["section_macro_f1"]), _text(iv["qwk"]),
                    time.time() - started, target / "report.html")
    index = root / "index.html"
    root.mkdir(parents=True, exist_ok=True)
    index.write_text(report_page.index_page(f"Evaluation reports of {label}", index_rows, rule=promote.RULE))
    run_id = _log(results, index, label, model_dir, this_version, champion_label if use_champion else None) if log_to_mlflow else None
    return {"model": label, "model_dir": str(model_dir), "champion": champion_label if use_champion else None, "index": str(index),
            "run_id": run_id, "pages": [str(p) for p in pages],
            "data": {k: {"page": str(root / k / "report.html"), "n_answers": r["summary"]["n_answers"],
                         **{f: r["summary"]["intervals"][f] for f in intervals.HEADLINE},
                         **({"difference": {f: r["summary"]["difference"][f] for f in intervals.HEADLINE}} if r["champion"] else {})}
                     for k, r in results.items()}}


def _text(iv) -> str:
    return f"{iv.value:.3f} [{iv.low:.3f}, {iv.high:.3f}]"


def _log(results: dict, index: Path, label: str, model_dir: Path, version, champion_label: str | None) -> str:
    import mlflow

    model_id = promote.model_id(version) if version is not None else None
    with mlflow.start_run(run_name=f"report-{label.replace(' ', '-')}") as active:
        mlflow.log_params({"model": label, "model_dir": str(model_dir), "champion": champion_label or "-",
                           "data": ",".join(results), "resamples": promote.RESAMPLES})
        mlflow.log_text(promote.RULE, "promotion_rule.txt")
        mlflow.log_artifact(str(index), artifact_path="report")
        for key, r in results.items():
            dataset = promote.mlflow_dataset(r["summary"]["data"], r["records"])
            mlflow.log_input(dataset, context="evaluation")
            promote.log_figures(r["this"]["figures"]["intervals"], f"{key}.", model_id, dataset)
            if r["champion"]:
                promote.log_figures({k: v["difference"] for k, v in r["champion"]["paired"].items()}, f"{key}.difference.")
            for f in r["files"]:
                mlflow.log_artifact(str(f), artifact_path=f"report/{key}")
        return active.info.run_id


def main(argv: list[str] | None = None) -> dict:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(description="Self-contained HTML evaluation reports, the champion beside the model, with intervals.")
    parser.add_argument("--model", default=None, help="model folder or models:/ URI (default: newest under models/, else @champion)")
    parser.add_argument("--data", nargs="*", default=None, help="labelled JSONL files (default: realworld, dev, test, other_writers, those present)")
    parser.add_argument("--out", default=None, help="report folder (default: reports/<model>)")
    parser.add_argument("--name", default=REGISTERED_MODEL_NAME, help="registered model name whose @champion is compared")
    parser.add_argument("--no-champion", action="store_true", help="leave the champion out")
    parser.add_argument("--gallery", type=int, default=report_page.GALLERY, help="answers in the error gallery")
    parser.add_argument("--max-windows", type=int, default=16)
    parser.add_argument("--no-mlflow", action="store_true", help="do not log the reports to MLflow")
    args = parser.parse_args(argv)
    result = run(args.model, args.data, args.out, args.max_windows, not args.no_mlflow, args.name, not args.no_champion, args.gallery)
    for key, figs in result["data"].items():
        line = f"{key} ({figs['n_answers']} answers): " + ", ".join(
            f"{f} {figs[f]['value']:.3f} [{figs[f]['low']:.3f}, {figs[f]['high']:.3f}]" for f in ("section_macro_f1", "qwk", "exact", "within_one"))
        if "difference" in figs:
            line += "; against the champion: " + ", ".join(
                f"{f} {figs['difference'][f]['value']:+.3f} [{figs['difference'][f]['low']:+.3f}, {figs['difference'][f]['high']:+.3f}]"
                for f in promote.GUARDED)
        print(line)
    print(f"index: {result['index']}")
    return result


if __name__ == "__main__":
    main()
