import pytest
import torch
from helpers import tiny_model as _model
from helpers import window_batch as _batch

from star_scorer.features import WindowCollator, build_example
from star_scorer.modeling import StarScorerModel


def test_forward_gives_both_heads_and_a_loss_that_trains(tiny_base, tokenizer, records):
    model = _model(tiny_base)
    batch = _batch(tokenizer, records)
    out = model(**batch)
    n_answers, n_tokens = batch["token_unit"].shape
    assert out.section_logits.shape == (n_answers, n_tokens, 5)
    assert out.unit_logits.shape == (*batch["unit_labels"].shape, 5)
    assert out.clause_logits.shape == (len(records), batch["clause_features"].shape[1], 4)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = out.loss.item()
    for _ in range(30):
        loss = model(**batch).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < first * 0.8


def test_clause_facts_do_not_depend_on_the_batch_or_on_other_clauses(tiny_base, tokenizer, records):
    """An answer's clause facts must not depend on which other answers share its batch, and a
    clause's facts come from its own tokens: adding a sentence elsewhere leaves them unchanged
    except through the encoder's context."""
    model = _model(tiny_base).eval()
    long_rec = records[0]
    n = _batch(tokenizer, [long_rec])["clause_features"].shape[1]
    alone = model(**_batch(tokenizer, [long_rec])).clause_logits
    together = model(**_batch(tokenizer, [records[2], long_rec, records[4]])).clause_logits[1:2, :n]
    assert _batch(tokenizer, [long_rec])["input_ids"].shape[0] > 1  # several windows
    torch.testing.assert_close(alone, together, atol=1e-5, rtol=1e-4)


def _fitted(model, batch, steps: int = 60):
    """``model`` trained on ``batch`` alone for ``steps`` AdamW steps, then its eval-mode output on it."""
    opt = torch.optim.AdamW(model.parameters(), lr=5e-3)
    for _ in range(steps):
        loss = model(**batch).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        return model(**batch)


def test_clause_loss_learns_evidence_and_the_answer_level_max(tiny_base, tokenizer, records):
    """With evidence, the evidence clause learns the fact and the other RESULT clauses learn its absence."""
    model = _model(tiny_base)
    with_evidence = [r for r in records if r.get("result_evidence")]
    assert with_evidence
    examples = [build_example(tokenizer, r, 48, 12) for r in with_evidence]
    assert any(1.0 in [v for row in ex["clause_facts"] for v in row] for ex in examples)
    batch = WindowCollator(tokenizer.pad_token_id)(examples)
    probs = _fitted(model, batch).clause_logits.sigmoid()
    known = batch["clause_facts"] >= 0
    agree = ((probs >= 0.5).float() == batch["clause_facts"])[known].float().mean().item()
    assert agree > 0.9


def test_save_and_load_round_trip_without_pickle(tiny_base, tokenizer, records, tmp_path):
    model = _model(tiny_base, switch_penalty=2.5).eval()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    assert not list(tmp_path.glob("*.bin")) and not list(tmp_path.glob("*.pt"))
    loaded = StarScorerModel.from_pretrained(tmp_path)
    assert loaded.scorer_config.switch_penalty == 2.5
    assert loaded.scorer_config.labels == ["SITUATION", "TASK", "ACTION", "RESULT", "OTHER"]
    batch = _batch(tokenizer, records[:2])
    torch.testing.assert_close(model(**batch).section_logits, loaded(**batch).section_logits)


def test_loading_weights_of_another_architecture_says_so(tiny_base, tmp_path):
    from safetensors.torch import load_file, save_file

    model = _model(tiny_base)
    model.save_pretrained(tmp_path)
    state = load_file(str(tmp_path / "model.safetensors"))
    save_file({k: v for k, v in state.items() if not k.startswith("head_sets.0.unit_rnn.")}, str(tmp_path / "model.safetensors"))
    with pytest.raises(ValueError, match=r"found a different architecture \(missing \['head_sets.0.unit_rnn"):
        StarScorerModel.from_pretrained(tmp_path)


def test_row_dropout_keeps_the_expected_value_and_drops_p(tiny_base):
    from star_scorer.modeling import RowDropout

    torch.manual_seed(0)
    drop = RowDropout(0.25)
    x = torch.ones(64, 50, 32)
    y = drop(x)
    assert abs((y == 0).float().mean().item() - 0.25) < 0.05
    assert abs(y.mean().item() - 1.0) < 0.1  # scaled by 1/(1-p), as nn.Dropout
    assert torch.equal(drop.eval()(x), x)
    with pytest.raises(ValueError, match="dropout probability"):
        RowDropout(1.0)
    # the encoder's dropout on states is swapped; attention keeps its own (its kernels read only p)
    model = _model(tiny_base, attention_dropout=0.0)
    kinds = {name: type(m).__name__ for name, m in model.encoder.named_modules() if "ropout" in type(m).__name__}
    assert kinds and all(kind == "RowDropout" for name, kind in kinds.items() if not name.endswith("attention.self.dropout"))
    assert model.encoder.config.attention_probs_dropout_prob == 0.0




def test_step_head_learns_the_marked_clauses_and_is_absent_by_default(tiny_base, tokenizer, records):
    """With ``step_loss_weight`` the clauses of a failure story learn their marked steps (and the unmarked ones their
    absence); answers not annotated for steps add nothing to the loss; without it there is no step head at all."""
    assert _model(tiny_base).head_sets[0].step_head is None and _model(tiny_base)(**_batch(tokenizer, records[:2])).step_logits is None
    failure = dict(records[0], failure_steps={
        "diagnosis": ["compared the feature distributions with the training window and found the depot's scanner feed had switched time zones"],
        "mitigation": ["I rolled back to the previous model, patched the timestamp parsing"],
        "prevention": ["added a drift alert on that feed"]})
    examples = [build_example(tokenizer, r, 48, 12) for r in (failure, records[1])]
    assert examples[1]["clause_steps"] == [[-1.0] * 4] * len(examples[1]["clause_steps"])  # not annotated: no step loss
    marked = torch.tensor(examples[0]["clause_steps"])
    assert marked[:, 1:].sum(0).tolist() == [2.0, 2.0, 1.0] and marked[:, 0].sum() == 0  # clauses, not sentences
    batch = WindowCollator(tokenizer.pad_token_id)(examples)
    model = _model(tiny_base, step_loss_weight=1.0)
    probs = _fitted(model, batch).step_logits.sigmoid()
    known = batch["clause_steps"] >= 0
    assert ((probs >= 0.5).float() == batch["clause_steps"])[known].float().mean().item() > 0.9
