"""Move ``@champion`` to ``@challenger`` only when the challenger is not worse:
``python -m star_scorer.jobs.promote [--name star-scorer] [--data FILE ...]``.

A trained (or recalibrated) model is registered as ``@challenger`` (``star_scorer.jobs.register``); this job
scores the challenger and the champion on the same labelled answers (the real-world set when it is there, and
dev), compares them with the paired bootstrap of ``star_scorer.intervals`` and applies ``RULE``. The first
model of a store becomes champion. The decision and the figures are printed, logged to MLflow (experiment
``star-scorer-promotion``: the datasets as run inputs, each model's figures against its logged model) and
returned; the challenger's model version is tagged with the decision.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from star_scorer.intervals import RESAMPLES, Interval
from star_scorer.paths import DATA_DIR, PROJ_ROOT, REGISTERED_MODEL_NAME, data_name

logger = logging.getLogger(__name__)

GUARDED = ("section_macro_f1", "qwk")  # the figures a challenger may not lose
MEAN_TOLERANCE = 1e-9  # the first set's mean of the guarded figures may not fall at all (float noise aside)
CHALLENGER, CHAMPION = "challenger", "champion"
REALWORLD = PROJ_ROOT.parent / "shared" / "realworld" / "dev.jsonl"
RULE = (
    f"@{CHALLENGER} becomes @{CHAMPION} unless, on the real-world set or on dev, its section macro-F1 or its QWK is worse "
    "than the champion's beyond the intervals: the 95% interval of the paired difference (challenger - champion, the same "
    f"answers resampled {RESAMPLES:,} times with replacement, percentile bootstrap) lies entirely below 0. A difference "
    "whose interval reaches 0 or above is not a loss; but on the first of those sets (the real-world one when it is there) "
    "the mean of the two figures may not fall at all, interval or not: with 154 answers the interval of a QWK difference "
    "reaches 0 for losses as large as 0.04, which let two worse models through. The first model registered in a store "
    "becomes champion."
)


def default_data() -> list[str]:
    """The sets a promotion is decided on: the real-world answers (when ``../shared/realworld/`` is there) and dev."""
    return [str(p) for p in (REALWORLD, DATA_DIR / "dev.jsonl") if p.exists()]


def decide(differences: dict[str, dict[str, Interval]]) -> tuple[bool, list[str]]:
    """``differences[data][figure]``: the interval of challenger - champion, the first set the one models are
    chosen on. Promote unless a guarded figure's interval lies entirely below 0 on some set, or the mean of the
    guarded figures' differences on the first set is below 0; the reasons name each such loss."""
    losses = [f"{data}: {figure} {d.value:+.3f} (95% interval {d.low:+.3f} to {d.high:+.3f}) is below 0 beyond the interval"
              for data, figs in differences.items() for figure, d in figs.items() if figure in GUARDED and d.high < 0]
    if differences:
        first, figs = next(iter(differences.items()))
        mean = sum(figs[f].value for f in GUARDED) / len(GUARDED)
        if mean < -MEAN_TOLERANCE:
            losses.append(f"{first}: the mean of {' and '.join(GUARDED)} falls by {-mean:.3f} "
                          f"({', '.join(f'{f} {figs[f].value:+.3f}' for f in GUARDED)})")
    return not losses, losses


def model_id(version) -> str | None:
    """The LoggedModel id behind a registered model version (MLflow 3: ``models:/m-...`` as its source)."""
    found = getattr(version, "model_id", None)
    if found:
        return found
    source = getattr(version, "source", "") or ""
    return source[len("models:/"):] if source.startswith("models:/m-") else None


def alias_version(name: str, alias: str):
    """The model version ``name@alias`` points at, or None."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from star_scorer.tracking import tracking_uri

    client = mlflow.MlflowClient(tracking_uri(), registry_uri=tracking_uri())
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def mlflow_dataset(data: str, records: list[dict]):
    """A labelled set as an MLflow dataset (id, answer and the gold score), named as its report folder."""
    import mlflow.data
    import pandas as pd

    frame = pd.DataFrame({"id": [r["id"] for r in records], "answer": [r["answer"] for r in records],
                          "result_quality": [r["result_quality"] for r in records]})
    return mlflow.data.from_pandas(frame, source=str(Path(data).resolve()), name=data_name(data), targets="result_quality")


def log_figures(figures: dict[str, Interval], prefix: str = "", model: str | None = None, dataset=None) -> None:
    """Each figure with its interval (``_low``, ``_high``) in the active run, against ``model`` (a LoggedModel id) when given."""
    import mlflow

    flat = {}
    for name, iv in figures.items():
        flat |= {f"{prefix}{name}": iv.value, f"{prefix}{name}_low": iv.low, f"{prefix}{name}_high": iv.high}
    mlflow.log_metrics(flat, model_id=model, dataset=dataset)


def run(name: str = REGISTERED_MODEL_NAME, data: list[str] | None = None, max_windows: int = 16, log_to_mlflow: bool = True) -> dict:
    import mlflow

    from star_scorer import intervals, tracking
    from star_scorer.data import load_jsonl
    from star_scorer.scorer import StarScorer

    tracking.setup("star-scorer-promotion")
    client = mlflow.MlflowClient(tracking.tracking_uri(), registry_uri=tracking.tracking_uri())
    challenger = alias_version(name, CHALLENGER)
    if challenger is None:
        raise ValueError(f"expected a version of {name!r} with alias @{CHALLENGER} (make train or calibrate --register "
                         "registers one), found none")
    champion = alias_version(name, CHAMPION)
    out = {"name": name, "challenger": int(challenger.version), "champion_before": int(champion.version) if champion else None,
           "rule": RULE, "data": {}, "losses": []}
    if champion is None or champion.version == challenger.version:
        promoted = champion is None
        out["reason"] = ("the first model of the store becomes champion" if promoted
                         else f"version {challenger.version} is already @{CHAMPION}")
    else:
        sets = data if data is not None else default_data()
        scorers = {role: StarScorer.load(f"models:/{name}/{v.version}", precision="fp32")
                   for role, v in ((CHALLENGER, challenger), (CHAMPION, champion))}
        differences, datasets = {}, {}
        for path in sets:
            records = load_jsonl(path)
            preds = {role: s.score_rows(records, max_windows=max_windows) for role, s in scorers.items()}
            compared = intervals.paired(records, preds[CHALLENGER], preds[CHAMPION])
            key = data_name(path)
            differences[key] = {f: compared[f]["difference"] for f in compared}
            datasets[key] = (path, records, compared)
            out["data"][key] = {"file": str(path), "n_answers": len(records),
                                **{f: {role: compared[f][role].as_dict() for role in (CHALLENGER, CHAMPION, "difference")}
                                   for f in intervals.HEADLINE}}
        promoted, out["losses"] = decide(differences)
        out["reason"] = ("not worse beyond the intervals on " + ", ".join(differences) if promoted
                         else "kept by the rule: " + "; ".join(out["losses"]))
        if log_to_mlflow:
            with mlflow.start_run(run_name=f"promote-v{challenger.version}-vs-v{champion.version}"):
                mlflow.log_params({"name": name, "challenger": challenger.version, "champion": champion.version,
                                   "resamples": RESAMPLES, "guarded": ",".join(GUARDED)})
                for key, (path, records, compared) in datasets.items():
                    dataset = mlflow_dataset(path, records)
                    mlflow.log_input(dataset, context="promotion")
                    log_figures({f: compared[f]["difference"] for f in intervals.HEADLINE}, f"{key}.difference.")
                    for role, version in ((CHALLENGER, challenger), (CHAMPION, champion)):
                        log_figures({f: compared[f][role] for f in intervals.HEADLINE}, f"{key}.", model_id(version), dataset)
                mlflow.set_tags({"decision": "promoted" if promoted else "kept", "reason": out["reason"][:5000]})
                mlflow.log_text(RULE, "promotion_rule.txt")
                mlflow.log_dict(out, "promotion.json")
    out["promoted"] = promoted
    if promoted:
        client.set_registered_model_alias(name, CHAMPION, challenger.version)
    if champion is None or champion.version != challenger.version:
        client.set_model_version_tag(name, challenger.version, "promotion", "promoted" if promoted else "kept")
        client.set_model_version_tag(name, challenger.version, "promotion_reason", out["reason"][:5000])
    out["champion"] = int(challenger.version) if promoted else int(champion.version)
    logger.info("%s: @%s is version %s (%s)", "promoted" if promoted else "not promoted", CHAMPION, out["champion"], out["reason"])
    return out


def summary_lines(result: dict) -> list[str]:
    """The decision and its figures, as printed."""
    lines = [f"rule: {result['rule']}", f"challenger v{result['challenger']}, champion before v{result['champion_before']}: "
             f"{'PROMOTED' if result['promoted'] else 'NOT PROMOTED'} ({result['reason']})"]
    for key, figs in result["data"].items():
        for figure in GUARDED:
            f = figs[figure]
            lines.append(f"  {key} ({figs['n_answers']} answers) {figure}: challenger {f[CHALLENGER]['value']:.3f}, "
                         f"champion {f[CHAMPION]['value']:.3f}, difference {f['difference']['value']:+.3f} "
                         f"[{f['difference']['low']:+.3f}, {f['difference']['high']:+.3f}]")
    return lines


def main(argv: list[str] | None = None) -> dict:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(description="Move @champion to @challenger unless the challenger is worse beyond the intervals.")
    parser.add_argument("--name", default=REGISTERED_MODEL_NAME, help="registered model name")
    parser.add_argument("--data", nargs="*", default=None, help="labelled JSONL files (default: ../shared/realworld/dev.jsonl when present, data/dev.jsonl)")
    parser.add_argument("--max-windows", type=int, default=16)
    parser.add_argument("--no-mlflow", action="store_true", help="decide and move the alias, but log no run")
    args = parser.parse_args(argv)
    result = run(args.name, args.data, args.max_windows, not args.no_mlflow)
    print("\n".join(summary_lines(result)))
    print(json.dumps({k: result[k] for k in ("promoted", "challenger", "champion_before", "champion", "reason")}, indent=2))
    return result


if __name__ == "__main__":
    main()
