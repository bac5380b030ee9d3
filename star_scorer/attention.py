"""Self-attention for scoring on a CPU: each window's own tokens, one window at a time.

Scoring pads a batch of windows to its longest, and torch's fused CPU attention computes
every padded key and query, over a (windows, heads, tokens, tokens) block that spills out
of the cache. Here a window's real tokens attend to each other alone, its scores in fp32:
on 2 cores, 12 heads of 32 dimensions and 256 tokens, it takes half the time of
``scaled_dot_product_attention`` (``python -m star_scorer.research.bench`` measures the
whole). The encoder's padded positions come out as zeros; nothing downstream reads them
(``modeling.answer_tokens`` keeps the content tokens only).

The windows must be padded on the right, as ``features.WindowCollator`` pads them; another
mask is refused.
"""

from __future__ import annotations

import torch
from transformers import AttentionInterface
from transformers.masking_utils import AttentionMaskInterface

NAME = "star_windows"
STEP = 8  # a window's tokens are read in steps of this many (its padding beyond them masked), as few shapes as lengths


def padding_mask(batch_size: int, q_length: int, kv_length: int, attention_mask: torch.Tensor | None = None, **kwargs):
    """The mask ``window_attention`` reads: the (windows, tokens) padding mask as it is."""
    return attention_mask


def window_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """(windows, heads, tokens, dim) -> (windows, tokens, heads, dim), each window over its first ``mask.sum()`` tokens."""
    if module.training and dropout > 0:
        raise ValueError("expected window attention at inference only, found a module training with attention dropout")
    n_windows, _, length, dim = query.shape
    scaling = dim**-0.5 if scaling is None else scaling
    if attention_mask is None:
        lengths = [length] * n_windows
    else:
        if attention_mask.dim() != 2:
            raise ValueError(f"expected a (windows, tokens) padding mask, found shape {tuple(attention_mask.shape)}")
        mask = attention_mask.bool()
        counts = mask.sum(-1)
        if not torch.equal(mask, torch.arange(mask.size(-1), device=mask.device) < counts[:, None]):
            raise ValueError("expected windows padded on the right (each mask a run of ones, then zeros), found another mask")
        lengths = counts.tolist()
    out = query.new_zeros(n_windows, length, query.size(1), dim)
    for w, n in enumerate(lengths):
        m = min(-(-n // STEP) * STEP, length)  # shapes in steps: the CPU kernels keep memory per shape
        scores = torch.matmul(query[w, :, :m], key[w, :, :m].transpose(-1, -2)).float().mul_(scaling)
        scores[..., n:] = float("-inf")
        probs = torch.softmax(scores, -1).to(value.dtype)
        out[w, :n] = torch.matmul(probs, value[w, :, :m])[:, :n].transpose(0, 1)
    return out, None


AttentionInterface.register(NAME, window_attention)
AttentionMaskInterface.register(NAME, padding_mask)
