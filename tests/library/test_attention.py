"""Window attention (scoring on a CPU) against torch's fused attention, and on a real encoder."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from star_scorer.attention import NAME, window_attention
from star_scorer.scorer import StarScorer


def _qkv(windows=4, heads=3, length=24, dim=8):
    torch.manual_seed(0)
    return (torch.randn(windows, heads, length, dim) for _ in range(3))


def test_each_window_attends_over_its_own_tokens_as_sdpa_does_under_the_padding_mask():
    q, k, v = _qkv()
    lengths = torch.tensor([24, 20, 9, 1])
    mask = torch.arange(24) < lengths[:, None]
    module = torch.nn.Module().eval()
    out, weights = window_attention(module, q, k, v, mask, scaling=8**-0.5)
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None, None, :]).transpose(1, 2)
    assert weights is None and out.shape == (4, 24, 3, 8)
    for w, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(out[w, :n], expected[w, :n], atol=1e-5, rtol=1e-5)
        assert not out[w, n:].any()  # padding comes out as zeros; nothing reads it
    no_mask, _ = window_attention(module, q, k, v, None)
    torch.testing.assert_close(no_mask, F.scaled_dot_product_attention(q, k, v).transpose(1, 2), atol=1e-5, rtol=1e-5)


def test_a_mask_that_is_not_right_padding_is_refused():
    q, k, v = _qkv(windows=2)
    holes = torch.ones(2, 24, dtype=torch.bool)
    holes[1, 3] = False
    with pytest.raises(ValueError, match="expected windows padded on the right"):
        window_attention(torch.nn.Module().eval(), q, k, v, holes)
    with pytest.raises(ValueError, match=r"expected a \(windows, tokens\) padding mask"):
        window_attention(torch.nn.Module().eval(), q, k, v, holes[:, None, None, :])


def test_the_cpu_scorer_reads_answers_with_window_attention_as_with_sdpa(trained):
    root, _ = trained
    records = [{"id": str(i), "answer": a} for i, a in enumerate([
        "Our churn model drifted. I owned the fix. I retrained it weekly. Churn fell 12%.",
        "I was asked to cut latency. " * 40 + "Latency fell from 300 ms to 120 ms.",  # several windows, padded batch
        "We shipped it.",
    ])]
    windows = StarScorer.load(root / "models" / "tiny", precision="fp32")
    sdpa = StarScorer.load(root / "models" / "tiny", precision="fp32", attention="sdpa")
    assert windows.model.encoder.config._attn_implementation == NAME
    assert sdpa.model.encoder.config._attn_implementation != NAME
    a, b = windows.score_rows(records, max_windows=4), sdpa.score_rows(records, max_windows=4)
    for x, y in zip(a, b):
        assert [(s["label"], s["start"], s["end"]) for s in x["sections"]] == [(s["label"], s["start"], s["end"]) for s in y["sections"]]
        assert x["result_quality"]["score"] == y["result_quality"]["score"]
        assert x["result_quality"]["facts"] == pytest.approx(y["result_quality"]["facts"], abs=1e-3)
    with pytest.raises(ValueError, match="expected attention among"):
        StarScorer.load(root / "models" / "tiny", attention="flash")
