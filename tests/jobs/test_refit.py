import pytest
import torch
from helpers import tiny_model as _model
from helpers import window_batch as _batch

from star_scorer.features import WindowCollator, build_example
from star_scorer.modeling import StarScorerModel


def test_head_refit_trains_the_heads_and_leaves_the_encoder_alone(tiny_base, tokenizer, records):
    from star_scorer.jobs.refit import cache_states, refit_heads

    model = _model(tiny_base)
    examples = [build_example(tokenizer, r, 48, 12) for r in records]
    collator = WindowCollator(tokenizer.pad_token_id)
    encoder_before = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    head_before = model.head_sets[0].section_head.weight.detach().clone()

    # cached states are the encoder's answer-level states, answer by answer
    states = cache_states(model, examples, collator, "cpu", batch_windows=3)
    batch = collator(examples)
    full = model.answer_states(batch["input_ids"], batch["attention_mask"], batch["answer_index"], batch["token_pos"], batch["token_unit"].shape)
    for i, ex in enumerate(examples):
        torch.testing.assert_close(states[i].float(), full[i, : len(ex["token_unit"])].detach(), atol=2e-3, rtol=2e-3)

    losses = []
    summary = refit_heads(model, examples, collator, epochs=30, lr=1e-2, batch_size=4, on_epoch=lambda e, loss: losses.append(loss))
    assert len(losses) == 30 == summary["refit_epochs"]
    assert losses[-1] < losses[0] * 0.7
    for k, v in model.encoder.state_dict().items():
        torch.testing.assert_close(v, encoder_before[k])
    assert not torch.equal(model.head_sets[0].section_head.weight, head_before)
    assert not model.training


def test_head_sets_are_fitted_apart_and_averaged(tiny_base, tokenizer, records, tmp_path):
    from star_scorer.jobs.refit import refit_heads

    model = _model(tiny_base, head_sets=2)
    examples = [build_example(tokenizer, r, 48, 12) for r in records]
    collator = WindowCollator(tokenizer.pad_token_id)
    losses = []
    summary = refit_heads(model, examples, collator, epochs=3, lr=1e-2, batch_size=4, on_epoch=lambda e, loss: losses.append((e, loss)))
    assert summary["refit_head_sets"] == 2
    assert [e for e, _ in losses] == list(range(6))  # one step count across both sets
    first, second = (h.section_head.weight for h in model.head_sets)
    assert not torch.equal(first, second)  # own initialisation and batch order each

    batch = _batch(tokenizer, records[:3])
    with torch.no_grad():
        both = model(**batch)
        apart = []
        for k in range(2):
            model.active_heads = [k]
            apart.append(model(**batch))
        model.active_heads = None
    mean_logp = torch.stack([o.section_logits.log_softmax(-1) for o in apart]).mean(0)
    torch.testing.assert_close(both.section_logits, mean_logp)
    torch.testing.assert_close(both.clause_logits, (apart[0].clause_logits + apart[1].clause_logits) / 2)

    model.save_pretrained(tmp_path)
    loaded = StarScorerModel.from_pretrained(tmp_path)
    assert len(loaded.head_sets) == 2
    torch.testing.assert_close(loaded(**batch).section_logits, both.section_logits)


def test_extra_head_sets_need_a_refit_stage():
    from star_scorer.jobs import train

    with pytest.raises(ValueError, match="head_refit_epochs >= 1 when head_sets > 1"):
        train.main(["--config", "configs/default.yaml", "--head_sets", "2", "--head_refit_epochs", "0"])
