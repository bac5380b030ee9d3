"""Text -> encoder windows and units, and character spans -> token and unit labels.

An answer is tokenized once with offsets; its content tokens are cut into
windows of ``max_length - 2`` tokens that overlap by ``stride`` tokens, and each
window gets the tokenizer's [CLS]/[SEP]. An answer is also cut into units
(sentences, long ones chunked): the model reads the sequence of units across the
whole answer, whatever the windows. A whole answer travels as one example.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from pipeline.data import segment_spans
from pipeline.labels import LABEL2ID

IGNORE_INDEX = -100
# a sentence ends at . ! or ? (and closing quotes) before whitespace, at a line break, or at the end:
# "0.91" and "e.g.x" stay inside their sentence
_SENTENCE = re.compile(r"""(?s).+?(?:[.!?]+["')\]]*(?=\s)|(?=\n)|$)""")
_WORD = re.compile(r"\S+")


@dataclass
class Encoded:
    """One answer's content tokens and how they map back to characters."""

    input_ids: list[int]
    offsets: list[tuple[int, int]]  # [start, end) characters of each content token
    windows: list[tuple[int, int]]  # [start, end) content-token ranges, overlapping


def window_ranges(n_tokens: int, window: int, stride: int) -> list[tuple[int, int]]:
    """Token ranges of width ``window`` overlapping by ``stride``; the last one ends at ``n_tokens``."""
    if window <= stride:
        raise ValueError(f"expected the window ({window} tokens) to be larger than the overlap ({stride} tokens)")
    if n_tokens <= window:
        return [(0, n_tokens)]
    step = window - stride
    starts = list(range(0, n_tokens - window, step)) + [n_tokens - window]
    return [(s, s + window) for s in starts]


def encode(tokenizer, text: str, max_length: int, stride: int) -> Encoded:
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    ids = list(enc["input_ids"])
    offsets = [tuple(o) for o in enc["offset_mapping"]]
    return Encoded(ids, offsets, window_ranges(len(ids), max_length - 2, stride))


def char_labels(answer: str, segments: list[dict]) -> np.ndarray:
    """A label id per character; whitespace between segments is -1."""
    labels = np.full(len(answer), -1, dtype=np.int64)
    for span in segment_spans(segments):
        labels[span.start : span.end] = LABEL2ID[span.label]
    return labels


def token_labels(offsets: list[tuple[int, int]], chars: np.ndarray) -> list[int]:
    """Each token takes the label of its first non-whitespace character."""
    out = []
    for start, end in offsets:
        piece = chars[start:end]
        piece = piece[piece >= 0]
        out.append(int(piece[0]) if len(piece) else IGNORE_INDEX)
    return out


def text_units(text: str, max_words: int = 20, chunk_words: int = 12) -> list[tuple[int, int]]:
    """Sentence spans [start, end), words only; a sentence over ``max_words`` words (a long
    clause chain, or an unpunctuated transcript) is cut into near-equal chunks of about
    ``chunk_words`` words, so a section change inside it still falls near a unit edge."""
    units = []
    for m in _SENTENCE.finditer(text):
        words = [(w.start() + m.start(), w.end() + m.start()) for w in _WORD.finditer(m.group())]
        if not words:
            continue
        n_chunks = 1 if len(words) <= max_words else -(-len(words) // chunk_words)
        bounds = np.linspace(0, len(words), n_chunks + 1).round().astype(int)
        units += [(words[a][0], words[b - 1][1]) for a, b in zip(bounds, bounds[1:]) if b > a]
    return units


def unit_features(units: list[tuple[int, int]], n_chars: int) -> list[list[float]]:
    """Per unit: where it starts and ends in the answer (0-1) and its length."""
    n = max(n_chars, 1)
    return [[a / n, b / n, min((b - a) / 400, 1.0)] for a, b in units]


N_UNIT_FEATURES = 3


def answer_inputs(tokenizer, text: str, max_length: int, stride: int) -> tuple[Encoded, list[tuple[int, int]], dict]:
    """What the model reads for one answer: its windows, and which unit each content token is in."""
    enc = encode(tokenizer, text, max_length, stride)
    units = text_units(text)
    unit_starts = [a for a, _ in units]
    token_unit = [max(bisect.bisect_right(unit_starts, start) - 1, 0) for start, _ in enc.offsets]
    inputs = {
        "window_input_ids": [[tokenizer.cls_token_id, *enc.input_ids[s:t], tokenizer.sep_token_id] for s, t in enc.windows],
        "window_starts": [s for s, _ in enc.windows],
        "token_unit": token_unit,
        "unit_features": unit_features(units, len(text)) or [[0.0] * N_UNIT_FEATURES],
    }
    return enc, units, inputs


def build_example(tokenizer, record: dict, max_length: int, stride: int) -> dict:
    """A training example: one answer's windows with token and unit labels and Result targets."""
    enc, units, inputs = answer_inputs(tokenizer, record["answer"], max_length, stride)
    chars = char_labels(record["answer"], record["segments"])
    unit_labels = []
    for a, b in units:
        piece = chars[a:b]
        piece = piece[piece >= 0]
        unit_labels.append(int(np.bincount(piece, minlength=len(LABEL2ID)).argmax()) if len(piece) else IGNORE_INDEX)
    facts = record["result_facts"]
    return {
        **inputs,
        "token_labels": token_labels(enc.offsets, chars),
        "unit_labels": unit_labels or [IGNORE_INDEX],
        "quality": int(record["result_quality"]),
        "facts": [float(facts[k]) for k in ("T", "B", "NB", "V")],
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


def _pad(rows: list[list], value, dtype) -> torch.Tensor:
    """Rows of different lengths (of scalars, or of equal-length feature lists) -> one padded tensor."""
    tensors = [torch.tensor(r, dtype=dtype) for r in rows]
    out = torch.full((len(rows), max(len(t) for t in tensors), *tensors[0].shape[1:]), value, dtype=dtype)
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

    def __init__(self, pad_token_id: int) -> None:
        self.pad_token_id = pad_token_id

    def __call__(self, examples: list[dict]) -> dict[str, torch.Tensor]:
        windows, positions, index = [], [], []
        for i, ex in enumerate(examples):
            for ids, start in zip(ex["window_input_ids"], ex["window_starts"]):
                windows.append(ids)
                positions.append([-1, *range(start, start + len(ids) - 2), -1])
                index.append(i)
        batch = {
            "input_ids": _pad(windows, self.pad_token_id, torch.long),
            "attention_mask": _pad([[1] * len(ids) for ids in windows], 0, torch.long),
            "token_pos": _pad(positions, -1, torch.long),
            "answer_index": torch.tensor(index, dtype=torch.long),
            "token_unit": _pad([ex["token_unit"] for ex in examples], -1, torch.long),
            "unit_features": _pad([ex["unit_features"] for ex in examples], 0.0, torch.float),
        }
        if "token_labels" in examples[0]:
            batch["labels"] = _pad([ex["token_labels"] for ex in examples], IGNORE_INDEX, torch.long)
            batch["unit_labels"] = _pad([ex["unit_labels"] for ex in examples], IGNORE_INDEX, torch.long)
        if "quality" in examples[0]:
            batch["quality"] = torch.tensor([ex["quality"] for ex in examples], dtype=torch.long)
            batch["facts"] = torch.tensor([ex["facts"] for ex in examples], dtype=torch.float)
        return batch

