"""Story heads: fitted on a tiny model's encoder states, saved beside it, read back by the scorer into every row."""

import json
import shutil

import jsonschema
import numpy as np
import pytest
from helpers import FIXTURES, read_jsonl

from star_scorer.features import clause_step_targets
from star_scorer.labels import COMPETENCIES, FAILURE_STEPS
from star_scorer.scorer import SCHEMA_PATH, StarScorer


def with_steps(records: list[dict]) -> list[dict]:
    """fx-0001 annotated for steps from its own ACTION text (the fixtures predate the step labels)."""
    out = [dict(r) for r in records]
    action = next(s["text"] for s in out[0]["segments"] if s["label"] == "ACTION")
    first, _, rest = action.partition(". ")
    out[0]["failure_steps"] = {"detection": [first], "mitigation": [rest.split(". ")[0]]}
    return out


def test_clause_targets_mark_the_clauses_a_step_span_covers():
    clauses = [(0, 10), (11, 30), (31, 40)]
    assert clause_step_targets({"mitigation": [(12, 29)]}, clauses) == [[0, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]]
    assert clause_step_targets({}, clauses)[0] == [0.0] * 4
    assert clause_step_targets(None, clauses)[0] == [-1.0] * 4


def test_fit_story_saves_heads_that_the_scorer_uses_and_reports_beside_baselines(trained, tmp_path):
    from star_scorer.jobs import fit_story

    root, _ = trained
    records = with_steps(read_jsonl(FIXTURES / "answers.jsonl"))
    data = tmp_path / "steps.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    model = tmp_path / "tiny"
    shutil.copytree(root / "models" / "tiny", model)
    result = fit_story.run(str(model), str(data), str(data), [str(data)], epochs=5)
    figures = result["results"]["steps"]
    assert set(figures) == {"model", "baseline"} and figures["model"]["n_step_annotated"] == 1
    assert set(figures["model"]["step_char_f1"]) == set(FAILURE_STEPS)
    assert 0 <= figures["model"]["competency_top1"] <= figures["model"]["competency_top2"] <= 1

    assert (model / "story_text.json").exists() and (model / "story_text.safetensors").exists()
    scorer = StarScorer.load(model)
    assert scorer.story_heads is not None and scorer.story_heads.text is not None
    thresholds = scorer.story_heads.step_thresholds  # chosen on dev, saved with the heads
    assert set(thresholds) == set(FAILURE_STEPS) and all(t in fit_story.STEP_THRESHOLDS for t in thresholds.values())
    saved = json.loads((model / "story_heads.json").read_text())
    assert saved["chosen"]["step_thresholds"] == thresholds and set(saved["chosen"]["step_thresholds_tried"]) == {
        str(t) for t in fit_story.STEP_THRESHOLDS}
    fit_story.run(str(model), str(data), str(data), [], keep_heads=True)  # the heads kept, step text and thresholds chosen again
    assert StarScorer.load(model).story_heads.step_thresholds == thresholds
    rows = scorer.score_rows([{"id": r["id"], "answer": r["answer"]} for r in records[:3]])
    asked = scorer.score_rows([{"id": r["id"], "answer": r["answer"], "question": r["question"]} for r in records[:3]])
    assert [row["sections"] for row in asked] == [row["sections"] for row in rows]  # the question reaches the story alone
    schema = json.loads(SCHEMA_PATH.read_text())
    for row in rows:
        jsonschema.validate(row, schema)
        story = row["story"]
        assert list(story["competencies"]) != [] and set(story["competencies"]) == set(COMPETENCIES)
        assert abs(sum(story["story_type_probabilities"].values()) - 1) < 1e-3
        for step in story["failure_steps"].values():
            assert all(set(span) == {"start", "end", "text", "probability"} for span in step["spans"])


def _story_records() -> list[dict]:
    """Two answers per competency, each question naming its own topic, every story type present."""
    topics = {c: c.replace("_", " ") for c in COMPETENCIES}
    kinds = ["success", "failure", "lesson"]
    return [{"question": f"Tell me about {topics[c]} at work, the {topics[c]} story", "answer": f"I handled the {topics[c]} part {k} with care",
             "competency": c, "story_type": kinds[(i + k) % 3]} for i, c in enumerate(COMPETENCIES) for k in range(2)]


def test_story_text_reads_the_question_and_keeps_its_figures_through_save_and_load(tmp_path):
    from star_scorer.story import StoryHeads, StoryText

    text = StoryText.fit(_story_records())
    text.weights = {"story_type": 0.5, "competency": 2.0}
    answers = ["I fixed it over a weekend"] * 2
    story, competency = text.log_probs(answers, ["Tell me about a conflict at work", "Tell me about mentoring at work"])
    assert COMPETENCIES[int(competency[0].argmax())] == "conflict" and COMPETENCIES[int(competency[1].argmax())] == "mentoring"
    assert abs(np.exp(story[0]).sum() - 1) < 1e-6
    _, without = text.log_probs(answers)  # no question: the answer alone, the same for both
    assert (without[0] == without[1]).all()

    heads = StoryHeads(hidden=4, n_clause_features=2)
    heads.text = text
    heads.save(tmp_path)
    loaded = StoryHeads.load(tmp_path)
    assert loaded.text is not None and loaded.text.weights == text.weights
    again = loaded.text.log_probs(answers, ["Tell me about a conflict at work", "Tell me about mentoring at work"])
    assert abs(again[1] - competency).max() < 1e-5
    zeros = np.zeros((2, 12))
    _, combined = loaded.story_logits(np.zeros((2, 3)), zeros, answers, ["Tell me about a conflict at work", None])
    assert abs(combined[0] - (2.0 * competency[0] - np.log(12))).max() < 1e-5


def test_a_step_shows_where_its_clause_reaches_the_steps_threshold():
    from star_scorer.story import decode_story

    text = "The alert fired at night. I rolled the model back. We added a drift check."
    clauses = [(0, 25), (26, 50), (51, 76)]
    logits = np.full((3, 4), -5.0)
    logits[0, 0] = np.log(0.3 / 0.7)  # detection at p 0.3
    logits[2, 3] = np.log(0.6 / 0.4)  # prevention at p 0.6
    story = (np.zeros(3), np.zeros(len(COMPETENCIES)), logits)
    at_half = decode_story(text, clauses, *story)["failure_steps"]
    assert not at_half["detection"]["present"] and at_half["prevention"]["spans"][0]["text"] == "We added a drift check."
    lower = decode_story(text, clauses, *story, {"detection": 0.25, "prevention": 0.7})["failure_steps"]
    assert lower["detection"]["spans"][0]["text"] == "The alert fired at night." and not lower["prevention"]["present"]
    assert lower["detection"]["probability"] == pytest.approx(0.3, abs=1e-3)


def test_step_context_reads_an_answer_the_same_whatever_its_batch_pads():
    import torch

    from star_scorer.story import StoryHeads

    torch.manual_seed(0)
    heads = StoryHeads(hidden=8, n_clause_features=3).eval()
    answers, clauses = torch.randn(2, 16), torch.randn(2, 5, 19)
    _, _, batched = heads(answers, clauses, torch.tensor([5, 3]))
    _, _, alone = heads(answers[1:], clauses[1:, :3], torch.tensor([3]))
    assert torch.allclose(batched[1, :3], alone[0], atol=1e-5)
    with pytest.raises(ValueError, match="expected context 'gru' or 'none'"):
        StoryHeads(hidden=8, n_clause_features=3, context="lstm")


def _step_records() -> list[dict]:
    """Short failure stories whose clauses say each step in its own plain words."""
    scenes = ["the churn model", "the fraud model", "the search ranker", "the pricing job", "the forecast", "the ETL"]
    out = []
    for scene in scenes:
        detection, diagnosis = f"An alert paged me about {scene}", "I traced it to a stale feature table"
        mitigation, prevention = f"I rolled {scene} back", "We added a freshness check to the pipeline"
        answer = f"{detection}. {diagnosis}. {mitigation}. {prevention}."
        out.append({"answer": answer, "segments": [{"label": "ACTION", "text": answer}],
                    "failure_steps": {"detection": [detection], "diagnosis": [diagnosis], "mitigation": [mitigation],
                                      "prevention": [prevention]}})
    return out


def test_step_text_marks_each_step_in_its_own_words_and_keeps_its_logits_through_save_and_load(tmp_path):
    from star_scorer.story import StepText, StoryHeads
    from star_scorer.text import clause_spans

    text = StepText.fit(_step_records(), clause_spans)
    answer = "An alert paged me about the new ranker. I traced it to a stale feature table. I rolled the ranker back."
    clauses = clause_spans(answer)
    (logits,) = text.logits([answer], [clauses])
    assert logits.shape == (3, len(FAILURE_STEPS))
    assert [FAILURE_STEPS[k] for k in logits.argmax(1)] == ["detection", "diagnosis", "mitigation"]

    heads = StoryHeads(hidden=4, n_clause_features=2)
    heads.step_text, text.weight = text, 0.5
    heads.save(tmp_path)
    loaded = StoryHeads.load(tmp_path)
    assert loaded.step_text is not None and loaded.step_text.weight == 0.5
    zeros = np.zeros((3, len(FAILURE_STEPS)))
    (combined,) = loaded.step_logits([zeros], [answer], [clauses])
    assert abs(combined - 0.5 * logits).max() < 1e-4  # float32 on disk
    heads.step_text = None  # weighed out on dev: saved without it, and no stale file left to load
    heads.save(tmp_path)
    assert StoryHeads.load(tmp_path).step_text is None
    assert StepText.fit([{**r, "failure_steps": None} for r in _step_records()], clause_spans) is None
