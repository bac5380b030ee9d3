"""A CPU bf16 attention for the encoder at inference: three batched matmuls and a softmax.

MiniLM's heads are 32 wide. On a CPU in bf16, PyTorch's fused ``scaled_dot_product_attention``
runs such heads at about an eighth of the rate of the linear layers, and half the rate of
plain ``bmm`` calls (``docs/experiments.md``). This computes the same attention as
``eager`` (scores, key-padding bias, softmax, weighted values) with the scale folded into the
query and the padding added inside ``baddbmm``; its mask is the key-padding bias alone,
``(batch, 1, 1, keys)``, instead of a full ``(batch, 1, queries, keys)`` mask. Registered
under ``ATTENTION`` with transformers' attention and mask interfaces; any mask other than
plain bidirectional padding goes to transformers' own eager mask.
"""

from __future__ import annotations

import torch
from transformers import AttentionInterface
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, bidirectional_mask_function, eager_mask

ATTENTION = "star_bmm"


def padding_bias(
    batch_size: int, q_length: int, kv_length: int, attention_mask: torch.Tensor | None = None,
    mask_function=bidirectional_mask_function, dtype: torch.dtype = torch.float32, **kwargs,
) -> torch.Tensor | None:
    """The additive key-padding bias ``(batch, 1, 1, keys)``: 0 on tokens, the dtype's minimum on padding;
    None when nothing is padded. Other masks (causal, packed, offsets) are left to ``eager_mask``."""
    plain = (mask_function is bidirectional_mask_function and attention_mask is not None and attention_mask.dim() == 2
             and attention_mask.shape[-1] == kv_length and not kwargs.get("q_offset") and not kwargs.get("kv_offset"))
    if not plain:
        return eager_mask(batch_size=batch_size, q_length=q_length, kv_length=kv_length, attention_mask=attention_mask,
                          mask_function=mask_function, dtype=dtype, **kwargs)
    keep = attention_mask.bool()
    if bool(keep.all()):
        return None
    bias = torch.zeros(batch_size, 1, 1, kv_length, dtype=dtype, device=attention_mask.device)
    return bias.masked_fill_(~keep[:, None, None, :], torch.finfo(dtype).min)


def bmm_attention(
    module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, attention_mask: torch.Tensor | None,
    scaling: float | None = None, dropout: float = 0.0, **kwargs,
) -> tuple[torch.Tensor, None]:
    """(batch, heads, length, dim) query, key and value -> (batch, length, heads, dim) output; inference only (no dropout)."""
    b, h, lq, d = query.shape
    lk = key.shape[2]
    q = (query * (d**-0.5 if scaling is None else scaling)).reshape(b * h, lq, d)
    k = key.reshape(b * h, lk, d).transpose(1, 2)
    if attention_mask is None:
        scores = torch.bmm(q, k)
    else:
        bias = attention_mask.to(query.dtype).expand(b, h, attention_mask.shape[2], lk).reshape(b * h, -1, lk)
        scores = torch.baddbmm(bias, q, k)
    out = torch.bmm(scores.softmax(-1), value.reshape(b * h, lk, d))
    return out.view(b, h, lq, d).transpose(1, 2).contiguous(), None


AttentionInterface.register(ATTENTION, bmm_attention)
ALL_MASK_ATTENTION_FUNCTIONS.register(ATTENTION, padding_bias)
