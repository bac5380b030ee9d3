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

``packed_states`` goes one step further: the windows' real tokens are laid end to end in one
sequence, so the encoder's linear layers, GELU and layer norms compute no padding either, and
attention reads each window's stretch of it (its lengths passed down as ``packed_lengths``).
"""

from __future__ import annotations

import torch
from transformers import AttentionInterface
from transformers.masking_utils import AttentionMaskInterface

NAME = "star_windows"
STEP = 8  # a window's tokens are read in steps of this many (its padding beyond them masked), as few shapes as lengths
PACK_MULTIPLE = 64  # a packed sequence is padded to a multiple of this: the CPU kernels keep memory per shape


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
    packed_lengths: list[int] | None = None,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """(windows, heads, tokens, dim) -> (windows, tokens, heads, dim), each window over its first ``mask.sum()`` tokens.

    With ``packed_lengths`` the input is one sequence of windows laid end to end (``packed_states``), and each
    window attends over its own stretch of it."""
    if module.training and dropout > 0:
        raise ValueError("expected window attention at inference only, found a module training with attention dropout")
    n_windows, _, length, dim = query.shape
    scaling = dim**-0.5 if scaling is None else scaling
    if packed_lengths is not None:
        return _packed_attention(query, key, value, packed_lengths, scaling), None
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
        out[w, :n] = _one_window(query[w], key[w], value[w], n, scaling)
    return out, None


def _one_window(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, n: int, scaling: float) -> torch.Tensor:
    """(heads, tokens from the window's first on, dim) -> its first ``n`` tokens' (n, heads, dim) attention over
    each other, read in steps of ``STEP`` tokens (the CPU kernels keep memory per shape), those beyond ``n`` masked."""
    m = min(-(-n // STEP) * STEP, q.size(1))
    scores = torch.matmul(q[:, :m], k[:, :m].transpose(-1, -2)).float().mul_(scaling)
    scores[..., n:] = float("-inf")
    probs = torch.softmax(scores, -1).to(v.dtype)
    return torch.matmul(probs, v[:, :m])[:, :n].transpose(0, 1)


def _packed_attention(query, key, value, lengths: list[int], scaling: float) -> torch.Tensor:
    """(1, heads, packed tokens, dim) -> (1, packed tokens, heads, dim): each window over its own stretch."""
    if query.size(0) != 1:
        raise ValueError(f"expected one packed sequence of windows, found a batch of {query.size(0)}")
    total = query.size(2)
    if sum(lengths) > total:
        raise ValueError(f"expected windows of {sum(lengths)} tokens in all, found a sequence of {total}")
    q, k, v = query[0], key[0], value[0]
    out = query.new_zeros(1, total, query.size(1), query.size(3))
    start = 0
    for n in lengths:  # a window's last step may read the next window's first tokens: they are masked
        out[0, start : start + n] = _one_window(q[:, start:], k[:, start:], v[:, start:], n, scaling)
        start += n
    return out


def packed_states(encoder: torch.nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor, pad_token_id: int = 0) -> torch.Tensor:
    """(windows, tokens) right-padded windows -> the encoder's (windows, tokens, hidden) states, zeros on padding.

    The windows' real tokens go through the encoder as one sequence (positions restarting at each window),
    padded to a multiple of ``PACK_MULTIPLE``; the encoder must use this module's attention."""
    if encoder.config._attn_implementation != NAME:
        raise ValueError(f"expected an encoder with {NAME!r} attention, found {encoder.config._attn_implementation!r}")
    mask = attention_mask.bool()
    lengths = mask.sum(-1)
    n = int(lengths.sum())
    total = -(-(n + STEP) // PACK_MULTIPLE) * PACK_MULTIPLE  # room for the last window's step
    ids = input_ids.new_full((1, total), pad_token_id)
    ids[0, :n] = input_ids[mask]
    positions = input_ids.new_zeros(1, total)
    positions[0, :n] = (mask.cumsum(-1) - 1)[mask]
    out = encoder(input_ids=ids, position_ids=positions, token_type_ids=torch.zeros_like(ids),
                  packed_lengths=lengths.tolist()).last_hidden_state[0]
    hidden = out.new_zeros(*mask.shape, out.size(-1))
    hidden[mask] = out[:n]
    return hidden


AttentionInterface.register(NAME, window_attention)
AttentionMaskInterface.register(NAME, padding_mask)
