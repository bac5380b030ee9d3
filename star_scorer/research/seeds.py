"""Seed spread: ``python -m star_scorer.research.seeds --data data/test.jsonl --seeds 42 43 44``.

Trains the config once per seed (each its own MLflow run, not registered) and/or
takes already trained ``--models``, evaluates every model on ``--data`` with the
same code as ``make evaluate`` (a report per model), and writes the mean and the
spread (std, min, max) of each figure to ``reports/seeds/<data>.{json,md}``, and
to an MLflow run in the ``star-scorer-seeds`` experiment.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np

from star_scorer.paths import MODELS_DIR, REPORTS_DIR, data_name

logger = logging.getLogger(__name__)


def figures(metrics: dict) -> dict[str, float]:
    """The figures the targets are set on, flat, from one evaluation's metrics.json."""
    out = {
        "section_macro_f1": metrics["section_macro_f1"],
        "qwk": metrics["qwk"],
        "exact": metrics["result_quality"]["exact"],
        "within_one": metrics["result_quality"]["within_one"],
    }
    for label, m in metrics["sections"]["per_label"].items():
        out[f"f1_{label}"] = m["f1"]
    for fact, m in metrics["facts"].items():
        out[f"fact_f1_{fact}"] = m["f1"]
    if "evidence" in metrics:
        out["evidence_char_f1"] = metrics["evidence"]["char_f1"]
    for name, m in metrics.get("slices", {}).items():
        out[f"{name}.section_macro_f1"] = m["section_macro_f1"]
        out[f"{name}.qwk"] = m["qwk"]
    return out


def spread(per_model: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    keys = sorted(set.intersection(*(set(f) for f in per_model.values())))
    out = {}
    for key in keys:
        values = np.array([f[key] for f in per_model.values()], dtype=float)
        out[key] = {"mean": float(values.mean()), "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
                    "min": float(values.min()), "max": float(values.max())}
    return out


def _markdown(data: str, per_model: dict, summary: dict) -> str:
    lines = [f"# Seed spread on {Path(data).name}", "", "Models: " + ", ".join(f"`{m}`" for m in per_model), "",
             "| figure | mean | std | min | max |", "|---|---|---|---|---|"]
    for key, s in summary.items():
        lines.append(f"| {key} | {s['mean']:.3f} | {s['std']:.3f} | {s['min']:.3f} | {s['max']:.3f} |")
    return "\n".join(lines) + "\n"


def run(data: str, seeds: list[int], models: list[str], config: str, log_to_mlflow: bool = True, out_dir: Path | None = None) -> dict:
    from star_scorer.jobs import evaluate, train

    models = list(models)
    for seed in seeds:
        # under models/seeds/: not registered, and never taken for "the newest model" by score/evaluate
        summary = train.main(["--config", config, "--seed", str(seed), "--registered_model_name", "",
                              "--models_dir", str(MODELS_DIR / "seeds"), "--reports_dir", str(REPORTS_DIR / "seeds"),
                              "--model_name", f"{Path(config).stem}-seed{seed}-{time.strftime('%Y%m%d-%H%M%S')}"])
        models.append(summary["model_dir"])
    if not models:
        raise ValueError("expected --seeds to train or --models to evaluate, found neither")
    stem = data_name(data)
    out_dir = Path(out_dir) if out_dir else REPORTS_DIR / "seeds"
    per_model = {}
    for model in models:
        report_dir = out_dir / stem / Path(model).name
        evaluate.run(data, model, out_dir=str(report_dir), log_to_mlflow=log_to_mlflow)
        per_model[model] = figures(json.loads((report_dir / "metrics.json").read_text()))
    summary = spread(per_model)
    (out_dir / f"{stem}.json").write_text(json.dumps({"data": data, "models": per_model, "spread": summary}, indent=2))
    (out_dir / f"{stem}.md").write_text(_markdown(data, per_model, summary))
    if log_to_mlflow:
        import mlflow

        from star_scorer import tracking

        tracking.setup("star-scorer-seeds")
        with mlflow.start_run(run_name=f"seeds-{stem}"):
            mlflow.log_params({"data": data, "models": json.dumps(list(per_model))[:6000], "n_models": len(per_model)})
            mlflow.log_metrics({_metric_name(f"{k}.{stat}"): v for k, s in summary.items() for stat, v in s.items() if stat in ("mean", "std")})
            mlflow.log_artifact(str(out_dir / f"{stem}.md"))
    logger.info("seed spread written to %s", out_dir / f"{stem}.md")
    return {"models": per_model, "spread": summary}


def _metric_name(name: str) -> str:
    """MLflow metric names allow no '=': style=asr -> style_asr, words=over-400 -> words_over-400."""
    return name.replace("=", "_")


def main(argv: list[str] | None = None) -> dict:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(description="Train a config under several seeds and report the mean and spread of its figures.")
    parser.add_argument("--data", required=True, help="labelled JSONL to evaluate on (the blind test: data/test.jsonl)")
    parser.add_argument("--seeds", type=int, nargs="*", default=[], help="seeds to train the config with")
    parser.add_argument("--models", nargs="*", default=[], help="already trained model folders to include")
    parser.add_argument("--config", default="configs/default.yaml")
    parser.add_argument("--no-mlflow", action="store_true")
    args = parser.parse_args(argv)
    result = run(args.data, args.seeds, args.models, args.config, not args.no_mlflow)
    for key in ("section_macro_f1", "qwk", "exact", "within_one"):
        s = result["spread"][key]
        print(f"{key}: {s['mean']:.3f} ± {s['std']:.3f} (min {s['min']:.3f}, max {s['max']:.3f})")
    return result


if __name__ == "__main__":
    main()
