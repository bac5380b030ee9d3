"""Helpers the test folders share (``pythonpath = ["tests"]`` in pyproject.toml); fixtures live in conftest.py."""

from __future__ import annotations

import json
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def write_second(path, records, relabel=None, facts=None):
    """Annotation file for ``records``; ``relabel``: {(id, segment index): label}, ``facts``: {id: [names]}."""
    relabel, facts = relabel or {}, facts or {}
    blocks = []
    for rec in records:
        names = facts.get(rec["id"], [k for k, v in rec["result_facts"].items() if v])
        lines = [f"### id: {rec['id']}", "facts: " + " ".join(names)]
        lines += [f"[{relabel.get((rec['id'], i), s['label'])}] {s['text']}" for i, s in enumerate(rec["segments"])]
        blocks.append("\n".join(lines))
    path.write_text("\n\n".join(blocks) + "\n")


def tiny_model(tiny_base, **kw):
    """A scorer over the tiny random encoder, 48-token windows, seeded."""
    import torch

    from star_scorer.modeling import ScorerConfig, StarScorerModel

    torch.manual_seed(0)
    return StarScorerModel.from_encoder(str(tiny_base), ScorerConfig(max_length=48, stride=12, **kw))


def window_batch(tokenizer, records):
    from star_scorer.features import WindowCollator, build_example

    return WindowCollator(tokenizer.pad_token_id)([build_example(tokenizer, r, 48, 12) for r in records])


TINY_TRAIN_ARGS = [
    "--augment", "transcript,drop",
    "--augment_fraction", "0.5",
    "--max_length", "64", "--stride", "16",
    "--max_steps", "2", "--per_device_train_batch_size", "32",  # one step an epoch
    "--eval_strategy", "epoch", "--save_strategy", "epoch", "--load_best_model_at_end", "true",
    "--head_refit_epochs", "2", "--refit_augment_fraction", "0.5",
    "--fact_calibration_file", str(FIXTURES / "answers.jsonl"),  # the score offsets read two sets, as with ../shared/realworld
]
