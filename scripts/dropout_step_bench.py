"""Fine-tuning step time under three dropout settings, as ratios in one run (docs/experiments.md, session 5).

``python scripts/dropout_step_bench.py [--answers 56]``: the default encoder with 2
frozen layers, batches of 8 training answers, 256-token windows; each setting
runs one warm-up step and then times the rest. Timings on shared machines are
noisy: read the ratios, not the seconds.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn
from transformers import AutoTokenizer

from star_scorer import modeling
from star_scorer.base_model import DEFAULT_BASE_MODEL, resolve_base_model
from star_scorer.data import load_jsonl
from star_scorer.features import WindowCollator, build_example
from star_scorer.jobs.train import freeze_lower_layers
from star_scorer.paths import DATA_DIR

SETTINGS = {
    "nn.Dropout everywhere": {"row": False, "attention_dropout": None},
    "RowDropout on states": {"row": True, "attention_dropout": None},
    "RowDropout, no attention dropout": {"row": True, "attention_dropout": 0.0},
}


def step_seconds(path: str, examples: list[dict], collator, row: bool, attention_dropout: float | None) -> float:
    swap, cls = modeling.use_row_dropout, modeling.RowDropout
    if not row:  # the plain nn.Dropout of before
        modeling.use_row_dropout, modeling.RowDropout = (lambda module: 0), nn.Dropout
    try:
        torch.manual_seed(0)
        model = modeling.StarScorerModel.from_encoder(path, modeling.ScorerConfig(max_length=256, stride=64, attention_dropout=attention_dropout))
    finally:
        modeling.use_row_dropout, modeling.RowDropout = swap, cls
    freeze_lower_layers(model, 2)
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    batches = [collator(examples[i : i + 8]) for i in range(0, len(examples), 8)]
    timed = 0.0
    for n, batch in enumerate(batches):
        started = time.perf_counter()
        loss = model(**batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if n:  # the first step warms up
            timed += time.perf_counter() - started
    return timed / max(len(batches) - 1, 1)


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=int, default=56, help="training answers to step through (8 per step)")
    args = parser.parse_args(argv)
    path, _ = resolve_base_model(DEFAULT_BASE_MODEL)
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    examples = [build_example(tokenizer, r, 256, 64) for r in load_jsonl(DATA_DIR / "train.jsonl")[: args.answers]]
    collator = WindowCollator(tokenizer.pad_token_id)
    times = {name: step_seconds(path, examples, collator, **kw) for name, kw in SETTINGS.items()}
    first = next(iter(times.values()))
    for name, seconds in times.items():
        print(f"{name:36s} {seconds:.2f} s/step  ratio {seconds / first:.2f}")
    return times


if __name__ == "__main__":
    main()
