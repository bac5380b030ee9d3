"""Second training stage: refit the heads on the fine-tuned encoder's cached states.

Fine-tuning moves the encoder and the heads together for a few epochs, which is
all the CPU budget allows; the unit GRU and the heads are still far from
converged then (rare TASK suffers most). Once the encoder is fixed, its states
for every training answer are computed once (one forward pass), and the heads
are trained afresh on them for many cheap epochs, the encoder untouched:
representation first, classifier after. On dev this lifted section macro-F1
from 0.749 to 0.875 (docs/experiments.md, run 3).
"""

from __future__ import annotations

import logging
import time

import numpy as np
import torch
from torch import nn

from star_scorer.features import WindowCollator, window_batches
from star_scorer.modeling import StarScorerModel, row_dropout
from star_scorer.scorer import resolve_precision

logger = logging.getLogger(__name__)


@torch.inference_mode()
def cache_states(model: StarScorerModel, examples: list[dict], collator: WindowCollator, device, batch_windows: int = 32) -> list[torch.Tensor]:
    """Each example's answer-level token states (float16, on CPU), in order.

    Where the device multiplies bf16 natively the pass runs under bf16 autocast: about twice as fast on
    2 CPU cores, and the heads then learn from states like the ones ``StarScorer`` (bf16 there) gives them.
    """
    model.eval()
    device = torch.device(device)
    bf16 = resolve_precision("auto", device) == "bf16"
    out: list[torch.Tensor] = []
    for batch in window_batches(range(len(examples)), [len(ex["window_input_ids"]) for ex in examples], batch_windows):
        b = collator([examples[i] for i in batch])
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            states = model.answer_states(
                b["input_ids"].to(device), b["attention_mask"].to(device), b["answer_index"].to(device), b["token_pos"].to(device),
                b["token_unit"].shape,
            )
        for row, i in enumerate(batch):
            out.append(states[row, : len(examples[i]["token_unit"])].to("cpu", torch.float16))
    return out


def reset_heads(model: StarScorerModel, seed: int) -> None:
    """Every parameter outside the encoder back to a fresh initialisation."""
    torch.manual_seed(seed)
    fresh = type(model)(model.scorer_config).state_dict()
    model.load_state_dict({k: v for k, v in fresh.items() if not k.startswith("encoder.")}, strict=False)


def refit_heads(
    model: StarScorerModel,
    examples: list[dict],
    collator: WindowCollator,
    epochs: int,
    lr: float,
    batch_size: int = 16,
    seed: int = 42,
    state_dropout: float = 0.1,
    on_epoch=None,
    states: list[torch.Tensor] | None = None,
) -> dict:
    """Train the heads from scratch on cached encoder states; the encoder is not touched.

    Each head set is fitted on its own, from its own initialisation and batch order
    (seed + its index), so that their average is an ensemble. ``on_epoch(step,
    mean_loss)`` is called after each epoch of each set, ``step`` counting on across
    sets (e.g. to log to MLflow). ``states``: the examples' ``cache_states``, when the caller has them
    (training keeps them for the story heads).
    """
    device = next(model.parameters()).device
    started = time.time()
    if states is None:
        states = cache_states(model, examples, collator, device)
    cached = time.time() - started
    reset_heads(model, seed)
    losses = []
    for k, head_set in enumerate(model.head_sets):  # each set on its own batch order: an ensemble, not copies
        model.active_heads = [k]
        losses.append(_fit_head_set(model, head_set, states, examples, collator, epochs, lr, batch_size, seed + k, state_dropout,
                                    None if on_epoch is None else lambda e, loss, k=k: on_epoch(k * epochs + e, loss)))
    model.active_heads = None
    model.eval()
    summary = {"refit_epochs": epochs, "refit_examples": len(examples), "refit_cache_seconds": cached, "refit_seconds": time.time() - started, "refit_final_loss": float(np.mean([run[-1] for run in losses])), "refit_head_sets": len(losses)}
    logger.info("refit heads: %s", summary)
    return summary


def _fit_head_set(model, head_set, states, examples, collator, epochs, lr, batch_size, seed, state_dropout, on_epoch) -> list[float]:
    """One-cycle AdamW on one head set's parameters; the mean loss of each epoch."""
    device = next(model.parameters()).device
    params = list(head_set.parameters())
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    steps_per_epoch = -(-len(examples) // batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=epochs * steps_per_epoch, pct_start=0.1)
    rng = np.random.default_rng(seed)
    model.train()
    losses = []
    for epoch in range(epochs):
        order = rng.permutation(len(examples))
        total = 0.0
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            b = collator([examples[i] for i in idx])
            tokens = torch.zeros((len(idx), b["token_unit"].shape[1], states[0].shape[-1]), device=device)
            for row, i in enumerate(idx):
                tokens[row, : states[i].shape[0]] = states[i].to(device, torch.float32)
            b = {k: v.to(device) for k, v in b.items()}
            out = model.heads(
                row_dropout(tokens, state_dropout), b["token_unit"], b["unit_features"], b["token_clause"], b["clause_features"],
                b["labels"], b["unit_labels"], b["clause_result"], b["clause_facts"], b["facts"], b.get("clause_steps"),
            )
            optimizer.zero_grad()
            out.loss.backward()
            nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            schedule.step()
            total += out.loss.item() * len(idx)
        losses.append(total / len(examples))
        if on_epoch is not None:
            on_epoch(epoch, losses[-1])
    return losses
