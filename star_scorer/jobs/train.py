"""Fine-tune the STAR scorer: ``python -m star_scorer.jobs.train --config configs/default.yaml [--flag value ...]``.

The YAML supplies defaults for three groups of settings (ModelArguments,
DataArguments, RunArguments) plus ``transformers.TrainingArguments``; command-line
flags override it. ``main`` parses, ``run`` trains, evaluates on dev, saves the
model under models/, and tracks it all in MLflow (registering the model as
``@challenger``; ``star_scorer.jobs.promote`` then moves ``@champion`` to it unless it is worse).
"""

from __future__ import annotations

import json
import logging
import random
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import mlflow
import numpy as np
import torch
import yaml
from datasets import Dataset
from transformers import AutoTokenizer, HfArgumentParser, Trainer, TrainerCallback, TrainingArguments, set_seed

from star_scorer import tracking
from star_scorer.base_model import DEFAULT_BASE_MODEL, resolve_base_model
from star_scorer.clause_text import FactText
from star_scorer.data import load_jsonl
from star_scorer.features import IGNORE_INDEX, WindowCollator, build_example
from star_scorer.jobs import fit_story, promote, register
from star_scorer.jobs.augment import augment_records
from star_scorer.jobs.calibrate import calibrate_decoding
from star_scorer.jobs.evaluate import write_report
from star_scorer.jobs.refit import cache_states, refit_heads
from star_scorer.labels import SECTION_LABELS
from star_scorer.metrics import evaluate_predictions
from star_scorer.modeling import ScorerConfig, StarScorerModel
from star_scorer.paths import CONFIGS_DIR, DATA_DIR, MODELS_DIR, PROJ_ROOT, REGISTERED_MODEL_NAME, REPORTS_DIR
from star_scorer.scorer import StarScorer, cpu_has_bf16
from star_scorer.text import clause_spans

logger = logging.getLogger(__name__)


@dataclass
class ModelArguments:
    base_model: str = field(default=DEFAULT_BASE_MODEL, metadata={"help": "local folder or hub id of the encoder"})
    offline: bool = field(default=True, metadata={"help": "never reach a model hub (hub ids need offline=false)"})
    max_length: int = field(default=256, metadata={"help": "encoder window in tokens; MiniLM's positions stop at 512"})
    stride: int = field(default=64, metadata={"help": "overlap between windows of long answers"})
    windows: str = field(default="fixed", metadata={"help": "fixed: full-width windows; balanced: as few windows as the overlap allows, of one width, as short as it allows"})
    dropout: float = field(default=0.1, metadata={"help": "heads' dropout, as in BERT"})
    attention_dropout: float | None = field(default=0.0, metadata={"help": "the encoder's dropout on attention weights (None: its own config's)"})
    class_weight_power: float = field(default=0.5, metadata={"help": "section loss weight = frequency^-power (0: none, 0.5: sqrt-inverse, 1: inverse)"})
    facts_loss_weight: float = field(default=0.5, metadata={"help": "weight of the T/B/NB/V losses (per clause and per answer)"})
    step_loss_weight: float = field(default=2.0, metadata={"help": "weight of the per-clause failure-step loss where steps are marked (0: no step head)"})
    head_lr_multiplier: float = field(default=10.0, metadata={"help": "new heads learn faster than the encoder"})
    freeze_layers: int = field(default=2, metadata={"help": "freeze the embeddings and this many lowest layers (-1: nothing frozen)"})
    switch_penalty: float = field(default=1.0, metadata={"help": "decoding cost of a section change between words"})
    unit_loss_weight: float = field(default=1.0, metadata={"help": "weight of the auxiliary unit-level section loss"})
    units: str = field(default="sentences", metadata={"help": "what the unit GRU reads: sentences (long ones chunked) or clauses"})
    head_sets: int = field(default=1, metadata={"help": "copies of the heads refit independently in stage 2 and averaged (needs head_refit_epochs)"})
    head_refit_epochs: int = field(default=6, metadata={"help": "after fine-tuning, refit the heads on cached encoder states for this many epochs (0: off)"})
    head_refit_lr: float = field(default=1e-3, metadata={"help": "peak learning rate of the head refit (one-cycle)"})


@dataclass
class DataArguments:
    train_file: str = field(default=str(DATA_DIR / "train.jsonl"), metadata={"help": "labelled JSONL for training"})
    dev_file: str = field(default=str(DATA_DIR / "dev.jsonl"), metadata={"help": "labelled JSONL for model selection"})
    augment: str = field(default="reorder,drop_result,transcript", metadata={"help": "comma-separated transforms from star_scorer.jobs.augment, '' for none"})
    augment_fraction: float = field(default=0.1, metadata={"help": "share of training answers each transform copies"})
    augment_mode: str = field(
        default="replace",
        metadata={"help": "add: copies join the originals; replace: a copy takes its original's place (same steps, same time)"},
    )
    refit_augment_fraction: float = field(
        default=0.2,
        metadata={"help": "stage 2 only: extra copies per transform (add mode), which cost a forward pass each, not a fine-tuning step"},
    )
    finetune_derived: float = field(
        default=0.0,
        metadata={"help": "share of the counterfactual copies in the training file (records with 'derived') that stage 1 fine-tunes on; the rest join stage 2"},
    )
    max_train_samples: int = field(default=0, metadata={"help": "cap on training answers (0: all); for smoke runs"})
    max_dev_samples: int = field(default=0, metadata={"help": "cap on dev answers (0: all)"})


@dataclass
class RunArguments:
    experiment_name: str = field(default="star-scorer", metadata={"help": "MLflow experiment"})
    registered_model_name: str = field(default=REGISTERED_MODEL_NAME, metadata={"help": "'' to skip registering"})
    models_dir: str = field(default=str(MODELS_DIR), metadata={"help": "where the trained model folder goes"})
    reports_dir: str = field(default=str(REPORTS_DIR), metadata={"help": "where evaluation reports go"})
    model_name: str = field(default="", metadata={"help": "model folder name; default: a timestamp"})
    log_model: bool = field(default=True, metadata={"help": "log the pyfunc to MLflow and register it"})
    calibrate_decoding: bool = field(default=True, metadata={"help": "pick decoding penalties on dev after training"})
    fact_text: bool = field(default=True, metadata={"help": "fit the fact text model (clause_text.FactText); its weight is chosen with the score's offsets"})
    story_epochs: int = field(default=15, metadata={"help": "epochs of the story heads fitted after fine-tuning (jobs/fit_story.py); 0 skips them"})
    number_check: float = field(
        default=0.0,
        metadata={"help": "choose the score's offsets among those that turn NB off on at least this share of dev's copies without their "
                          "numbers (0: any; the share is reported either way)"},
    )
    fact_calibration_file: str = field(
        default="../shared/realworld/dev.jsonl",
        metadata={"help": "labelled real answers (never trained on) that choose the fact offsets beside dev (jobs/calibrate.py); "
                          "a relative path is from the project root; '' or missing: dev alone"},
    )


DEFAULT_CONFIG = CONFIGS_DIR / "default.yaml"


def read_config(path: str | Path, parser: HfArgumentParser) -> dict:
    """A config file's settings, every key checked against the settings the parser knows."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"expected a config file at {path}, found nothing there")
    settings = yaml.safe_load(path.read_text()) or {}
    known = {a.dest for a in parser._actions}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ValueError(f"{path}: expected settings of ModelArguments, DataArguments, RunArguments or TrainingArguments, found unknown {unknown}")
    return settings


def parse(argv: list[str] | None = None) -> tuple[ModelArguments, DataArguments, RunArguments, TrainingArguments]:
    """Settings: ``configs/default.yaml`` (the one source of defaults, which the dataclasses repeat for
    their own fields), then ``--config FILE``'s overrides (a variant holds only what it changes), then flags."""
    parser = HfArgumentParser((ModelArguments, DataArguments, RunArguments, TrainingArguments))
    argv = list(sys.argv[1:] if argv is None else argv)
    settings = read_config(DEFAULT_CONFIG, parser)
    if "--config" in argv:
        i = argv.index("--config")
        variant = Path(argv[i + 1])
        del argv[i : i + 2]
        if variant.resolve() != DEFAULT_CONFIG.resolve():
            settings |= read_config(variant, parser)
    parser.set_defaults(**settings)
    namespace, unknown = parser.parse_known_args(argv)
    if unknown:
        raise ValueError(f"expected flags of ModelArguments, DataArguments, RunArguments or TrainingArguments, found unknown {unknown}")
    if namespace.bf16 and (namespace.use_cpu or not torch.cuda.is_available()):
        if cpu_has_bf16():
            namespace.use_cpu = True  # transformers takes bf16 without a GPU only when told it trains on the CPU
        else:
            namespace.bf16 = False
            logger.warning("bf16 asked for, but this CPU has no native bf16 (AVX512-BF16 or AMX), where it is slower than fp32: "
                           "training in fp32")
    return tuple(kind(**{f.name: getattr(namespace, f.name) for f in fields(kind) if f.init}) for kind in parser.dataclass_types)


def with_copies(records: list[dict], copies: list[dict], mode: str) -> list[dict]:
    """The training set with augmented ``copies`` added, or put in place of the answers they were made from
    (the first copy of an answer wins; the set keeps its size, so a run keeps its step count)."""
    if mode == "add":
        return records + copies
    if mode != "replace":
        raise ValueError(f"expected augment_mode add or replace, found {mode!r}")
    by_source: dict[str, dict] = {}
    for copy in copies:
        by_source.setdefault(copy["id"].split("#", 1)[0], copy)
    return [by_source.get(r["id"], r) for r in records]


def training_records(
    records: list[dict], augment: str, fraction: float, mode: str, seed: int,
    refit_fraction: float = 0.0, refit_transforms: list[str] | None = None, finetune_derived: float = 1.0,
) -> tuple[list[dict], list[dict]]:
    """Stage 1's training answers and stage 2's extra ones.

    Stage 1: the original answers, their augmented copies added or put in their place,
    and a seeded ``finetune_derived`` share of the counterfactual copies that ``make data``
    derived (records with ``derived``). Stage 2 refits the heads on all of stage 1 plus the
    other counterfactual copies and its own augmented copies of the originals (a different
    sample: seed + 1). Copies are cheap in stage 2 (a forward pass each) and dear in stage 1
    (a fine-tuning step each).
    """
    transforms = [t.strip() for t in augment.split(",") if t.strip()]
    refit_transforms = transforms if refit_transforms is None else refit_transforms
    originals = [r for r in records if "derived" not in r]
    derived = [r for r in records if "derived" in r]
    rng = random.Random(seed + 2)
    chosen = [rng.random() < finetune_derived for _ in derived]
    extra = [r for r, c in zip(derived, chosen) if not c]
    if refit_transforms and refit_fraction > 0:
        extra += augment_records(originals, refit_transforms, refit_fraction, seed=seed + 1)
    stage1 = originals
    if transforms:
        stage1 = with_copies(originals, augment_records(originals, transforms, fraction=fraction, seed=seed), mode)
    return stage1 + [r for r, c in zip(derived, chosen) if c], extra


def class_weights(examples: list[dict], power: float) -> list[float] | None:
    """Per-label loss weights proportional to (label frequency)^-power, mean 1."""
    if power == 0:
        return None
    if not 0 < power <= 1:
        raise ValueError(f"expected class_weight_power in [0, 1], found {power}")
    counts = np.ones(len(SECTION_LABELS))
    for ex in examples:
        for lab in ex["token_labels"]:
            if lab != IGNORE_INDEX:
                counts[lab] += 1
    w = (counts / counts.sum()) ** -power
    return (w / w.mean()).round(4).tolist()


class MlflowMetricsCallback(TrainerCallback):
    """Logs every numeric Trainer log (loss, learning rate, per-epoch dev figures) to the active MLflow run."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        numeric = {k.replace("/", "_"): float(v) for k, v in (logs or {}).items() if isinstance(v, (int, float))}
        if numeric and mlflow.active_run() is not None:
            mlflow.log_metrics(numeric, step=state.global_step)


class ScorerTrainer(Trainer):
    """A Trainer whose evaluation runs the real scorer on the dev answers (same code as batch scoring)."""

    def __init__(self, *args, dev_records: list[dict], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.dev_records = dev_records
        self.last_eval: dict = {}

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict[str, float]:
        scorer = StarScorer(self.model, self.processing_class, device=self.args.device)
        preds = scorer.score_rows(self.dev_records, max_windows=self.args.per_device_eval_batch_size)
        self.model.train()
        report = evaluate_predictions(self.dev_records, preds)
        self.last_eval = report
        metrics = {
            f"{metric_key_prefix}_combined": report["combined"],
            f"{metric_key_prefix}_section_macro_f1": report["section_macro_f1"],
            f"{metric_key_prefix}_qwk": report["qwk"],
            f"{metric_key_prefix}_exact": report["result_quality"]["exact"],
            f"{metric_key_prefix}_within_one": report["result_quality"]["within_one"],
        }
        for label, m in report["sections"]["per_label"].items():
            metrics[f"{metric_key_prefix}_f1_{label}"] = m["f1"]
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics


def freeze_lower_layers(model: StarScorerModel, n_layers: int) -> int:
    """Freeze the encoder's embeddings and its ``n_layers`` lowest layers (no backward through them: faster on CPU)."""
    if n_layers < 0:
        return 0
    prefixes = ("encoder.embeddings.", *(f"encoder.encoder.layer.{i}." for i in range(n_layers)))
    frozen = 0
    for name, p in model.named_parameters():
        if name.startswith(prefixes):
            p.requires_grad = False
            frozen += 1
    return frozen


def build_optimizer(model: StarScorerModel, lr: float, head_mult: float, weight_decay: float) -> torch.optim.Optimizer:
    encoder, heads = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (encoder if name.startswith("encoder.") else heads).append(p)
    return torch.optim.AdamW(
        [{"params": encoder, "lr": lr}, {"params": heads, "lr": lr * head_mult}], lr=lr, weight_decay=weight_decay
    )


def run(model_args: ModelArguments, data_args: DataArguments, run_args: RunArguments, training_args: TrainingArguments) -> dict:
    started = time.time()
    if model_args.head_sets < 1 or (model_args.head_sets > 1 and model_args.head_refit_epochs < 1):
        raise ValueError(
            f"expected head_sets >= 1, and head_refit_epochs >= 1 when head_sets > 1 (stage 2 fits the extra sets); "
            f"found head_sets={model_args.head_sets}, head_refit_epochs={model_args.head_refit_epochs}"
        )
    set_seed(training_args.seed)
    name = run_args.model_name or time.strftime("%Y%m%d-%H%M%S")
    model_dir = Path(run_args.models_dir) / name
    report_dir = Path(run_args.reports_dir) / name / "dev"

    train_records = load_jsonl(data_args.train_file)
    dev_records = load_jsonl(data_args.dev_file)
    if data_args.max_train_samples:
        train_records = train_records[: data_args.max_train_samples]
    if data_args.max_dev_samples:
        dev_records = dev_records[: data_args.max_dev_samples]
    train_records, refit_copies = training_records(
        train_records, data_args.augment, data_args.augment_fraction, data_args.augment_mode, training_args.seed,
        data_args.refit_augment_fraction, finetune_derived=data_args.finetune_derived,
    )
    n_augmented = sum("#" in r["id"] for r in train_records)
    logger.info("training on %d answers (%d augmented), selecting on %d", len(train_records), n_augmented, len(dev_records))

    base_path, local_only = resolve_base_model(model_args.base_model, offline=model_args.offline)
    tokenizer = AutoTokenizer.from_pretrained(base_path, local_files_only=local_only)
    examples = [build_example(tokenizer, r, model_args.max_length, model_args.stride, model_args.units, model_args.windows) for r in train_records]
    for ex in examples:
        ex["length"] = sum(len(w) for w in ex["window_input_ids"])
    config = ScorerConfig(
        max_length=model_args.max_length,
        stride=model_args.stride,
        windows=model_args.windows,
        dropout=model_args.dropout,
        attention_dropout=model_args.attention_dropout,
        section_class_weights=class_weights(examples, model_args.class_weight_power),
        facts_loss_weight=model_args.facts_loss_weight,
        step_loss_weight=model_args.step_loss_weight,
        switch_penalty=model_args.switch_penalty,
        unit_loss_weight=model_args.unit_loss_weight,
        units=model_args.units,
        head_sets=model_args.head_sets,
        base_model=model_args.base_model,
    )
    model = StarScorerModel.from_encoder(base_path, config, local_files_only=local_only)
    frozen = freeze_lower_layers(model, model_args.freeze_layers)
    logger.info("froze %d of %d parameter tensors", frozen, len(list(model.parameters())))

    resolved = {
        "model": asdict(model_args),
        "data": asdict(data_args),
        "run": asdict(run_args) | {"model_name": name},
        "training": {k: v for k, v in training_args.to_dict().items() if not k.startswith("_")},
    }
    config.training = resolved

    tracking.setup(run_args.experiment_name)
    with mlflow.start_run(run_name=name) as active:
        mlflow.log_params(_flat_params(resolved))
        mlflow.log_dict(resolved, "resolved_config.json")
        mlflow.set_tags({"model_dir": str(model_dir), "n_train": len(train_records), "n_dev": len(dev_records)})
        collator = WindowCollator(tokenizer.pad_token_id)
        optimizer = build_optimizer(model, training_args.learning_rate, model_args.head_lr_multiplier, training_args.weight_decay)
        trainer = ScorerTrainer(
            model=model,
            args=training_args,
            train_dataset=Dataset.from_list(examples),
            eval_dataset=Dataset.from_list(examples[:1]),  # placeholder: evaluate() scores dev_records
            data_collator=collator,
            processing_class=tokenizer,
            optimizers=(optimizer, None),
            callbacks=[MlflowMetricsCallback()],
            dev_records=dev_records,
        )
        model.active_heads = [0]  # fine-tuning trains the encoder under one head set; stage 2 refits them all
        train_output = trainer.train()
        model = trainer.model
        model.active_heads = None
        story_items = None  # the story heads read the states stage 2 caches: one encoder pass over the training answers
        if model_args.head_refit_epochs > 0:
            refit_examples = examples + [build_example(tokenizer, r, model_args.max_length, model_args.stride, model_args.units, model_args.windows)
                                         for r in refit_copies]
            states = cache_states(model, refit_examples, collator, training_args.device)
            refit = refit_heads(
                model, refit_examples, collator, model_args.head_refit_epochs, model_args.head_refit_lr,
                batch_size=training_args.per_device_train_batch_size * 2, seed=training_args.seed,
                on_epoch=lambda epoch, loss: mlflow.log_metric("refit_loss", loss, step=epoch), states=states,
            )
            mlflow.log_metrics(refit)
            if run_args.story_epochs > 0:  # the counterfactual copies change a Result only: the story heads skip them
                refit_records = train_records + refit_copies
                kept = [i for i, r in enumerate(refit_records) if "derived" not in r]
                story_items = fit_story.items_from_states([refit_records[i] for i in kept], [refit_examples[i] for i in kept],
                                                          [states[i] for i in kept])
            del states
        # the words' model of the facts: every answer of the training file, the counterfactual copies too (they flip B and NB)
        fact_text = FactText.fit(load_jsonl(data_args.train_file), clause_spans) if run_args.fact_text and run_args.calibrate_decoding else None
        if run_args.calibrate_decoding:
            fact_records = None
            fact_file = PROJ_ROOT / run_args.fact_calibration_file if run_args.fact_calibration_file else None
            if fact_file is not None and fact_file.exists():
                fact_records = load_jsonl(fact_file)
            elif fact_file is not None:
                logger.warning("no %s here: fact offsets are chosen on dev alone", fact_file)
            calibrating = StarScorer(model, tokenizer, device=training_args.device, fact_text=fact_text)
            calibration = calibrate_decoding(calibrating, dev_records, fact_records=fact_records, number_check_at_least=run_args.number_check)
            fact_text = calibrating.fact_text  # None when its weight was chosen at 0
            mlflow.log_dict(calibration, "decoding_calibration.json")
            mlflow.log_params({f"decoding.{k}": str(v) for k, v in calibration["best"].items()})
        model.save_pretrained(model_dir)
        tokenizer.save_pretrained(str(model_dir))
        if fact_text is not None:
            fact_text.save(model_dir)
        (model_dir / "resolved_config.yaml").write_text(yaml.safe_dump(resolved, sort_keys=False))
        if run_args.calibrate_decoding:  # the search's figures beside the model, as make calibrate leaves them
            (model_dir / "decoding_calibration.json").write_text(json.dumps(calibration, indent=2, default=str))

        scorer = StarScorer(model, tokenizer, device=training_args.device, fact_text=fact_text)
        dev_preds = scorer.score_rows(dev_records, max_windows=training_args.per_device_eval_batch_size)
        report = evaluate_predictions(dev_records, dev_preds)
        files = write_report(report, report_dir, title=f"Dev evaluation of {name}", data_file=data_args.dev_file, model=str(model_dir))
        for f in files:
            mlflow.log_artifact(str(f), artifact_path="dev_report")
        final = {"dev_section_macro_f1": report["section_macro_f1"], "dev_qwk": report["qwk"], "dev_combined": report["combined"],
                 "dev_exact": report["result_quality"]["exact"], "dev_within_one": report["result_quality"]["within_one"]}
        wall = time.time() - started
        final["train_wall_seconds"] = wall
        mlflow.log_metrics(final)
        if run_args.story_epochs > 0:  # story type, competency and failure steps, on the fine-tuned encoder's states
            heads, history, chosen = fit_story.fit(scorer, load_jsonl(data_args.train_file), dev_records, epochs=run_args.story_epochs,
                                                   seed=training_args.seed, train_items=story_items)
            heads.save(model_dir, {"train_file": data_args.train_file, "dev_file": data_args.dev_file, "chosen": chosen, "history": history})
            final |= {"dev_story_type_accuracy": chosen["story_type_accuracy"], "dev_competency_top1": chosen["competency_top1"],
                      "dev_competency_top2": chosen["competency_top2"],
                      **{f"dev_step_f1_{k}": v for k, v in chosen["step_char_f1"].items()}}
            mlflow.log_metrics(final)
        registered = {}
        if run_args.log_model:
            registered = register.log_scorer(model_dir, run_args.registered_model_name or None)
        summary = {
            "model_dir": str(model_dir),
            "run_id": active.info.run_id,
            "tracking_uri": tracking.tracking_uri(),
            "train_runtime_seconds": train_output.metrics.get("train_runtime"),
            "total_wall_seconds": time.time() - started,
            "best_metric": trainer.state.best_metric,
            "report_files": [str(f) for f in files],
            **final,
            **registered,
        }
    if registered.get("registered_model"):
        sets = [str(p) for p in (promote.REALWORLD, Path(data_args.dev_file)) if p.exists()]
        decision = promote.run(registered["registered_model"], data=sets)
        print("\n".join(promote.summary_lines(decision)))
        summary["promotion"] = {k: decision[k] for k in ("promoted", "champion_before", "champion", "reason")}
    (model_dir / "train_summary.json").write_text(json.dumps(summary, indent=2))
    logger.info("done: %s", json.dumps(summary, indent=2))
    return summary


def _flat_params(resolved: dict) -> dict[str, str]:
    flat = {}
    for group, values in resolved.items():
        for k, v in values.items():
            text = json.dumps(v, default=str) if not isinstance(v, str) else v
            flat[f"{group}.{k}"] = text[:500]
    return flat


def main(argv: list[str] | None = None) -> dict:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return run(*parse(argv))


if __name__ == "__main__":
    main()
