"""Refit a trained model's heads with other stage-2 settings, without fine-tuning again.

    python -m star_scorer.research.refit_probe --model models/<name> --out models/experiments/<probe> \
        [--refit_augment_fraction 0.5] [--epochs 10] [--transforms reorder,drop_result,transcript] [--batch-size 32] [--lr 1.5e-3]

Stage 2 (``star_scorer.jobs.refit``) trains the heads on cached encoder states, so its
settings can be compared in minutes on one fine-tuned encoder. The probe rebuilds
the model's own training set (its recorded data files, stage-1 augmentation and
seed), adds the stage-2 copies asked for, refits, re-calibrates decoding on the
recorded dev file and saves a complete model folder under ``--out``, ready for
``make evaluate`` and ``make robustness``. With the model's own settings it
reproduces the model's heads.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from transformers import AutoTokenizer

from star_scorer.data import load_jsonl
from star_scorer.features import WindowCollator, build_example
from star_scorer.jobs.calibrate import calibrate_decoding
from star_scorer.jobs.refit import refit_heads
from star_scorer.jobs.train import training_records
from star_scorer.modeling import StarScorerModel
from star_scorer.paths import PROJ_ROOT
from star_scorer.scorer import StarScorer, default_device

logger = logging.getLogger(__name__)


def refit_probe(model_dir: str | Path, out: str | Path, fraction: float | None = None, epochs: int | None = None,
                transforms: list[str] | None = None, seed: int | None = None, batch_size: int | None = None,
                lr: float | None = None) -> dict:
    device = default_device()  # where star_scorer.jobs.train refits and calibrates, so the probe repeats the same arithmetic
    model = StarScorerModel.from_pretrained(model_dir, device=device)
    recorded = model.scorer_config.training
    if not recorded:
        raise ValueError(f"{model_dir}: expected a model saved by star_scorer.jobs.train (with its training settings), found none")
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    data, margs = recorded["data"], recorded["model"]
    seed = recorded["training"]["seed"] if seed is None else seed
    fraction = data.get("refit_augment_fraction", 0.0) if fraction is None else fraction
    epochs = margs["head_refit_epochs"] if epochs is None else epochs

    records, extra = training_records(
        load_jsonl(data["train_file"]), data["augment"], data["augment_fraction"], data["augment_mode"], seed, fraction, transforms,
        data.get("finetune_derived", 1.0),
    )
    examples = [build_example(tokenizer, r, margs["max_length"], margs["stride"], margs.get("units", "sentences"),
                              margs.get("windows", "fixed")) for r in records + extra]
    batch_size = batch_size or recorded["training"]["per_device_train_batch_size"] * 2  # what training refits with
    lr = lr or margs["head_refit_lr"]
    summary = refit_heads(model, examples, WindowCollator(tokenizer.pad_token_id), epochs, lr, batch_size=batch_size, seed=seed)
    run = recorded.get("run") or {}
    facts = run.get("fact_calibration_file")  # training chooses the fact offsets there too
    facts = PROJ_ROOT / facts if facts and (PROJ_ROOT / facts).exists() else None
    calibration = calibrate_decoding(StarScorer(model, tokenizer, device=device), load_jsonl(data["dev_file"]),
                                     fact_records=load_jsonl(facts) if facts else None,
                                     number_check_at_least=run.get("number_check", 0.0))
    data["refit_augment_fraction"] = fraction  # the saved model records the settings its heads were refit with
    margs["head_refit_epochs"] = epochs
    out = Path(out)
    model.save_pretrained(out)
    tokenizer.save_pretrained(str(out))
    result = {"model": str(model_dir), "out": str(out), "refit_augment_fraction": fraction, "batch_size": batch_size,
              "lr": lr, "transforms": transforms or data["augment"], **summary, "dev_macro_f1": calibration["dev_macro_f1"],
              "decoding": calibration["best"]}
    (out / "refit_probe.json").write_text(json.dumps(result, indent=2))
    return result


def main(argv: list[str] | None = None) -> dict:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(description="Refit a trained STAR scorer's heads with other stage-2 settings.")
    parser.add_argument("--model", required=True, help="a model folder saved by star_scorer.jobs.train")
    parser.add_argument("--out", required=True, help="where the refit model folder goes")
    parser.add_argument("--refit_augment_fraction", type=float, default=None, help="default: the model's own")
    parser.add_argument("--epochs", type=int, default=None, help="default: the model's head_refit_epochs")
    parser.add_argument("--transforms", default=None, help="stage-2 transforms, comma-separated; default: stage 1's")
    parser.add_argument("--batch-size", type=int, default=None, help="answers per refit step; default: training's")
    parser.add_argument("--lr", type=float, default=None, help="refit learning rate; default: the model's head_refit_lr")
    parser.add_argument("--seed", type=int, default=None, help="heads' initialisation, batch order and copies; default: the model's training seed")
    args = parser.parse_args(argv)
    transforms = None if args.transforms is None else [t.strip() for t in args.transforms.split(",") if t.strip()]
    result = refit_probe(args.model, args.out, args.refit_augment_fraction, args.epochs, transforms, args.seed, args.batch_size, args.lr)
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
