"""Text -> encoder windows, units and clauses; character spans -> token, unit and clause labels.

An answer is tokenized once with offsets; its content tokens are cut into
windows of at most ``max_length - 2`` tokens that overlap by at least ``stride`` tokens,
and each window gets the tokenizer's [CLS]/[SEP]. An answer is also cut into units
(sentences, long ones chunked): the model reads the sequence of units across the
whole answer, whatever the windows. And it is cut into clauses, finer than units,
the places where a Result fact is decided (LABELING.md: the evidence of a fact is
the clause that makes it true); each clause carries a few flags for numbers in
any form. A whole answer travels as one example.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from star_scorer.data import evidence_spans, step_spans
from star_scorer.labels import FACTS, FAILURE_STEPS, LABEL2ID
from star_scorer.text import (  # noqa: F401 - re-exported: the model's inputs are built from these
    N_CLAUSE_FEATURES,
    N_UNIT_FEATURES,
    NUMBER_FLAGS,
    char_labels,
    clause_features,
    clause_spans,
    text_units,
    unit_features,
)

IGNORE_INDEX = -100


@dataclass
class Encoded:
    """One answer's content tokens and how they map back to characters."""

    input_ids: list[int]
    offsets: list[tuple[int, int]]  # [start, end) characters of each content token
    windows: list[tuple[int, int]]  # [start, end) content-token ranges, overlapping


WINDOW_KINDS = ("fixed", "balanced")


def window_ranges(n_tokens: int, window: int, stride: int, kind: str = "fixed") -> list[tuple[int, int]]:
    """Token ranges of at most ``window`` tokens overlapping by at least ``stride``, covering ``n_tokens``.

    ``fixed``: full-width windows, ``window - stride`` apart, the last one ending at ``n_tokens``
    (a 300-token answer reads 508 tokens). ``balanced``: as few windows, of one width, as short
    as an overlap of ``stride`` allows (that answer reads 364 tokens, no token with less context
    than ``stride / 2`` on its inner side).
    """
    if window <= stride:
        raise ValueError(f"expected the window ({window} tokens) to be larger than the overlap ({stride} tokens)")
    if kind not in WINDOW_KINDS:
        raise ValueError(f"expected windows in {list(WINDOW_KINDS)}, found {kind!r}")
    if n_tokens <= window:
        return [(0, n_tokens)]
    if kind == "balanced":
        k = -(-(n_tokens - stride) // (window - stride))
        width = -(-(n_tokens + (k - 1) * stride) // k)
        return [(s, s + width) for s in (round(i * (n_tokens - width) / (k - 1)) for i in range(k))]
    step = window - stride
    starts = list(range(0, n_tokens - window, step)) + [n_tokens - window]
    return [(s, s + window) for s in starts]


def encode(tokenizer, text: str, max_length: int, stride: int, windows: str = "fixed") -> Encoded:
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    ids = list(enc["input_ids"])
    offsets = [tuple(o) for o in enc["offset_mapping"]]
    return Encoded(ids, offsets, window_ranges(len(ids), max_length - 2, stride, windows))


def token_labels(offsets: list[tuple[int, int]], chars: np.ndarray) -> list[int]:
    """Each token takes the label of its first non-whitespace character."""
    out = []
    for start, end in offsets:
        piece = chars[start:end]
        piece = piece[piece >= 0]
        out.append(int(piece[0]) if len(piece) else IGNORE_INDEX)
    return out


def _containing(starts: list[int], offsets: list[tuple[int, int]]) -> list[int]:
    """For each token, the index of the span (by sorted ``starts``) it falls in."""
    return [max(bisect.bisect_right(starts, start) - 1, 0) for start, _ in offsets]


UNIT_KINDS = ("sentences", "clauses")


def answer_inputs(
    tokenizer, text: str, max_length: int, stride: int, units: str = "sentences", windows: str = "fixed"
) -> tuple[Encoded, list[tuple[int, int]], dict]:
    """What the model reads for one answer: its windows, and which unit and clause each content token is in.

    ``units``: the unit GRU reads sentences (long ones chunked) or clauses; ``windows``: how long
    answers are cut (``window_ranges``). Returns the
    encoding, the units, and the inputs (with ``clauses``, the clause spans, for decoding).
    """
    enc = encode(tokenizer, text, max_length, stride, windows)
    return enc, *encoded_inputs(enc, text, (tokenizer.cls_token_id, tokenizer.sep_token_id), units)


def encoded_inputs(
    enc: Encoded, text: str, specials: tuple[int, int], units: str = "sentences"
) -> tuple[list[tuple[int, int]], dict]:
    """``answer_inputs`` after tokenizing: the units and the inputs of an answer from its encoding
    and the tokenizer's ([CLS], [SEP]) ids. Pure Python on the text, so scoring threads can share it."""
    if units not in UNIT_KINDS:
        raise ValueError(f"expected units in {list(UNIT_KINDS)}, found {units!r}")
    cls_id, sep_id = specials
    clauses = clause_spans(text)
    units = clauses if units == "clauses" else text_units(text)
    inputs = {
        "window_input_ids": [[cls_id, *enc.input_ids[s:t], sep_id] for s, t in enc.windows],
        "window_starts": [s for s, _ in enc.windows],
        "token_unit": _containing([a for a, _ in units], enc.offsets),
        "unit_features": unit_features(units, len(text)) or [[0.0] * N_UNIT_FEATURES],
        "token_clause": _containing([a for a, _ in clauses], enc.offsets),
        "clause_features": clause_features(text, clauses) or [[0.0] * N_CLAUSE_FEATURES],
        "clauses": clauses,
    }
    return units, inputs


def _majority(chars: np.ndarray, spans: list[tuple[int, int]]) -> list[int]:
    """The most frequent label id over each span's labelled characters (IGNORE_INDEX if none)."""
    out = []
    for a, b in spans:
        piece = chars[a:b]
        piece = piece[piece >= 0]
        out.append(int(np.bincount(piece, minlength=len(LABEL2ID)).argmax()) if len(piece) else IGNORE_INDEX)
    return out


def clause_targets(record: dict, clauses: list[tuple[int, int]], chars: np.ndarray) -> tuple[list[int], list[list[float]]]:
    """Which clauses are gold RESULT (1/0), and per clause and fact a target: 1 evidence, 0 not, -1 unknown.

    A fact that does not hold is 0 on every RESULT clause. A fact that holds is 1 on the
    clauses that overlap its evidence by at least half (of the clause or of the evidence)
    and 0 on the other RESULT clauses; without evidence it is unknown there (-1), and only
    the answer-level loss (max over RESULT clauses) teaches it. Clauses outside RESULT are -1.
    """
    is_result = [int(lab == LABEL2ID["RESULT"]) for lab in _majority(chars, clauses)]
    evidence = evidence_spans(record)
    facts = record["result_facts"]
    targets = []
    for (a, b), result in zip(clauses, is_result):
        row = []
        for fact in FACTS:
            if not result:
                row.append(-1.0)
            elif not facts[fact]:
                row.append(0.0)
            elif fact not in evidence:
                row.append(-1.0)
            else:
                hit = any(min(b, e) - max(a, s) >= 0.5 * min(b - a, e - s) for s, e in evidence[fact])
                row.append(float(hit))
        targets.append(row)
    return is_result, targets


def clause_step_targets(spans: dict[str, list[tuple[int, int]]] | None, clauses: list[tuple[int, int]]) -> list[list[float]]:
    """Per clause, 1.0 for each step whose span covers at least half of the clause or of the span; -1 when the answer
    was not annotated for steps (no loss)."""
    if spans is None:
        return [[-1.0] * len(FAILURE_STEPS) for _ in clauses]
    out = []
    for a, b in clauses:
        row = []
        for step in FAILURE_STEPS:
            hit = 0.0
            for s, e in spans.get(step, []):
                overlap = min(b, e) - max(a, s)
                if overlap > 0 and overlap >= 0.5 * min(b - a, e - s):
                    hit = 1.0
            row.append(hit)
        out.append(row)
    return out


def record_step_spans(record: dict) -> dict[str, list[tuple[int, int]]] | None:
    """``data.step_spans``, or None for a copy whose text changed (a transcript, a reorder) so that it no longer holds
    every annotated step: no step loss there rather than a wrong one."""
    steps = step_spans(record)
    if steps is not None and sum(map(len, steps.values())) != sum(map(len, record["failure_steps"].values())):
        return None
    return steps


def build_example(tokenizer, record: dict, max_length: int, stride: int, units: str = "sentences", windows: str = "fixed") -> dict:
    """A training example: one answer's windows with token and unit labels and Result targets."""
    enc, units, inputs = answer_inputs(tokenizer, record["answer"], max_length, stride, units, windows)
    chars = char_labels(record["answer"], record["segments"])
    clauses = inputs.pop("clauses")
    clause_result, clause_facts = clause_targets(record, clauses, chars)
    facts = record["result_facts"]
    return {
        **inputs,
        "token_labels": token_labels(enc.offsets, chars),
        "unit_labels": _majority(chars, units) or [IGNORE_INDEX],
        "clause_result": clause_result or [0],
        "clause_facts": clause_facts or [[-1.0] * len(FACTS)],
        "facts": [float(facts[k]) for k in FACTS],
        "clause_steps": clause_step_targets(record_step_spans(record), clauses) or [[-1.0] * len(FAILURE_STEPS)],
    }


def window_batches(order: list[int], n_windows: list[int], max_windows: int) -> Iterator[list[int]]:
    """Consecutive items of ``order`` holding at most ``max_windows`` windows together (one item may hold more)."""
    batch: list[int] = []
    n = 0
    for i in order:
        if batch and n + n_windows[i] > max_windows:
            yield batch
            batch, n = [], 0
        batch.append(i)
        n += n_windows[i]
    if batch:
        yield batch


def _pad(rows: list[list], value, dtype, multiple: int = 1) -> torch.Tensor:
    """Rows of different lengths (of scalars, or of equal-length feature lists) -> one padded tensor, its length
    rounded up to ``multiple``."""
    tensors = [torch.tensor(r, dtype=dtype) for r in rows]
    length = -(-max(len(t) for t in tensors) // multiple) * multiple
    out = torch.full((len(rows), length, *tensors[0].shape[1:]), value, dtype=dtype)
    for i, t in enumerate(tensors):
        out[i, : len(t)] = t
    return out


class WindowCollator:
    """Flattens the windows of a batch of answers into one encoder batch.

    ``answer_index`` maps each window to its answer and ``token_pos`` each window token to
    its place among the answer's content tokens (-1 for [CLS], [SEP] and padding), so the
    model can put an answer's tokens back together across windows. Token- and unit-level
    tensors are per answer, padded with -1 / -100.
    """

    def __init__(self, pad_token_id: int, pad_to_multiple: int = 1) -> None:
        self.pad_token_id = pad_token_id
        # scoring pads windows and answers to a multiple of this (units and clauses to a quarter of it): the CPU
        # kernels keep memory per input shape (oneDNN), so free lengths grow a long run's memory with every new
        # shape; steps keep the set of shapes small
        self.pad_to_multiple = pad_to_multiple
        self.pad_units = max(pad_to_multiple // 4, 1)  # sentences and clauses per answer, in steps of 8

    def __call__(self, examples: list[dict]) -> dict[str, torch.Tensor]:
        windows, positions, index = [], [], []
        for i, ex in enumerate(examples):
            for ids, start in zip(ex["window_input_ids"], ex["window_starts"]):
                windows.append(ids)
                positions.append([-1, *range(start, start + len(ids) - 2), -1])
                index.append(i)
        batch = {
            "input_ids": _pad(windows, self.pad_token_id, torch.long, self.pad_to_multiple),
            "attention_mask": _pad([[1] * len(ids) for ids in windows], 0, torch.long, self.pad_to_multiple),
            "token_pos": _pad(positions, -1, torch.long, self.pad_to_multiple),
            "answer_index": torch.tensor(index, dtype=torch.long),
            "token_unit": _pad([ex["token_unit"] for ex in examples], -1, torch.long, self.pad_to_multiple),
            "unit_features": _pad([ex["unit_features"] for ex in examples], 0.0, torch.float, self.pad_units),
            "token_clause": _pad([ex["token_clause"] for ex in examples], -1, torch.long, self.pad_to_multiple),
            "clause_features": _pad([ex["clause_features"] for ex in examples], 0.0, torch.float, self.pad_units),
        }
        if "token_labels" in examples[0]:
            batch["labels"] = _pad([ex["token_labels"] for ex in examples], IGNORE_INDEX, torch.long)
            batch["unit_labels"] = _pad([ex["unit_labels"] for ex in examples], IGNORE_INDEX, torch.long)
        if "facts" in examples[0]:
            batch["clause_result"] = _pad([ex["clause_result"] for ex in examples], 0, torch.long)
            batch["clause_facts"] = _pad([ex["clause_facts"] for ex in examples], -1.0, torch.float)
            batch["facts"] = torch.tensor([ex["facts"] for ex in examples], dtype=torch.float)
        if "clause_steps" in examples[0]:
            batch["clause_steps"] = _pad([ex["clause_steps"] for ex in examples], -1.0, torch.float)
        return batch

