"""Window attention (scoring on a CPU) against torch's fused attention, and on a real encoder."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from transformers import BertConfig, BertModel

from star_scorer.attention import NAME, packed_states, window_attention
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
    windows = StarScorer.load(root / "models" / "tiny", precision="fp32", attention="windows")
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


def test_auto_attention_on_a_cpu_takes_windows_without_amx_and_torchs_with_it(trained, monkeypatch):
    root, _ = trained
    for amx, expected in ((False, True), (True, False)):
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda amx=amx: amx, raising=False)
        scorer = StarScorer.load(root / "models" / "tiny", device="cpu", precision="fp32")
        assert (scorer.model.encoder.config._attn_implementation == NAME) is expected


def _tiny_encoder(attention=NAME):
    torch.manual_seed(0)
    config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=64)
    encoder = BertModel(config).eval()
    encoder.set_attn_implementation(attention)
    return encoder


def test_packed_windows_read_as_the_padded_batch_does_with_zeros_on_padding():
    encoder = _tiny_encoder()
    lengths = torch.tensor([30, 17, 8, 5, 1])  # 61 real tokens: the packed sequence is padded to 128
    mask = (torch.arange(32) < lengths[:, None]).long()
    ids = torch.randint(1, 100, (5, 32)).masked_fill(mask == 0, 0)
    with torch.inference_mode():
        padded = encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        packed = packed_states(encoder, ids, mask)
    assert packed.shape == padded.shape
    for w, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(packed[w, :n], padded[w, :n], atol=1e-5, rtol=1e-5)
        assert not packed[w, n:].any()


def test_packing_needs_window_attention_and_one_sequence():
    mask = torch.ones(2, 8, dtype=torch.long)
    with pytest.raises(ValueError, match="expected an encoder with 'star_windows' attention"):
        packed_states(_tiny_encoder("sdpa"), torch.ones(2, 8, dtype=torch.long), mask)
    q, k, v = _qkv(windows=2)
    with pytest.raises(ValueError, match="expected one packed sequence of windows, found a batch of 2"):
        window_attention(torch.nn.Module().eval(), q, k, v, None, packed_lengths=[24, 24])
    q, k, v = _qkv(windows=1)
    with pytest.raises(ValueError, match="expected windows of 30 tokens in all, found a sequence of 24"):
        window_attention(torch.nn.Module().eval(), q, k, v, None, packed_lengths=[20, 10])
