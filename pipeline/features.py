"""Text -> encoder windows, and character spans -> token labels.

An answer is tokenized once with offsets; its content tokens are cut into
windows of ``max_length - 2`` tokens that overlap by ``stride`` tokens, and each
window gets the tokenizer's [CLS]/[SEP]. A whole answer travels as one example
(all its windows), so the Result-quality head can pool over the whole answer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from pipeline.data import segment_spans
from pipeline.labels import LABEL2ID

IGNORE_INDEX = -100


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


def build_example(tokenizer, record: dict, max_length: int, stride: int) -> dict:
    """A training example: all windows of one answer with token labels and Result targets."""
    enc = encode(tokenizer, record["answer"], max_length, stride)
    labels = token_labels(enc.offsets, char_labels(record["answer"], record["segments"]))
    win_ids, win_labels = [], []
    for start, end in enc.windows:
        win_ids.append([tokenizer.cls_token_id, *enc.input_ids[start:end], tokenizer.sep_token_id])
        win_labels.append([IGNORE_INDEX, *labels[start:end], IGNORE_INDEX])
    facts = record["result_facts"]
    return {
        "window_input_ids": win_ids,
        "window_labels": win_labels,
        "quality": int(record["result_quality"]),
        "facts": [float(facts[k]) for k in ("T", "B", "NB", "V")],
    }


class WindowCollator:
    """Flattens the windows of a batch of answers, with ``answer_index`` mapping window -> answer."""

    def __init__(self, pad_token_id: int) -> None:
        self.pad_token_id = pad_token_id

    def __call__(self, examples: list[dict]) -> dict[str, torch.Tensor]:
        windows, labels, index = [], [], []
        for i, ex in enumerate(examples):
            for ids, labs in zip(ex["window_input_ids"], ex.get("window_labels") or [None] * len(ex["window_input_ids"])):
                windows.append(ids)
                labels.append(labs)
                index.append(i)
        width = max(len(w) for w in windows)
        input_ids = torch.full((len(windows), width), self.pad_token_id, dtype=torch.long)
        attention = torch.zeros((len(windows), width), dtype=torch.long)
        content = torch.zeros((len(windows), width), dtype=torch.long)
        for row, ids in enumerate(windows):
            input_ids[row, : len(ids)] = torch.tensor(ids)
            attention[row, : len(ids)] = 1
            content[row, 1 : len(ids) - 1] = 1  # not [CLS] / [SEP]
        batch = {
            "input_ids": input_ids,
            "attention_mask": attention,
            "content_mask": content,
            "answer_index": torch.tensor(index, dtype=torch.long),
        }
        if labels[0] is not None:
            lab = torch.full((len(windows), width), IGNORE_INDEX, dtype=torch.long)
            for row, labs in enumerate(labels):
                lab[row, : len(labs)] = torch.tensor(labs)
            batch["labels"] = lab
        if "quality" in examples[0]:
            batch["quality"] = torch.tensor([ex["quality"] for ex in examples], dtype=torch.long)
            batch["facts"] = torch.tensor([ex["facts"] for ex in examples], dtype=torch.float)
        return batch
