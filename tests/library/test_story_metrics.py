"""Issue 17's figures from scored rows: story type, competency ranks and failure-step character F1."""

import pytest

from star_scorer.labels import COMPETENCIES, FAILURE_STEPS
from star_scorer.metrics import story_metrics

ANSWER = "The alert fired at noon. I rolled the model back. We added a drift check."
DETECT, MITIGATE, PREVENT = (0, 24), (25, 48), (49, 72)


def _record(story_type="failure", competency="production_failure", steps=True):
    rec = {"answer": ANSWER, "segments": [{"label": "ACTION", "text": ANSWER}], "story_type": story_type, "competency": competency}
    if steps:
        rec["failure_steps"] = {"detection": [ANSWER[slice(*DETECT)]], "mitigation": [ANSWER[slice(*MITIGATE)]]}
    return rec


def _row(story_type="failure", ranked=("production_failure", "conflict"), spans=None):
    spans = spans or {}
    return {"story": {
        "story_type": story_type,
        "competencies": {c: 0.5 for c in list(ranked) + [c for c in COMPETENCIES if c not in ranked]},
        "failure_steps": {step: {"spans": [{"start": a, "end": b} for a, b in spans.get(step, [])]} for step in FAILURE_STEPS},
    }}


def test_story_figures_count_type_rank_and_step_characters():
    records = [_record(), _record("success", "conflict", steps=False)]
    rows = [_row(spans={"detection": [DETECT], "prevention": [PREVENT]}), _row("failure")]
    figures = story_metrics(records, rows)
    assert figures["n_answers"] == 2 and figures["n_step_annotated"] == 1
    assert figures["story_type_accuracy"] == 0.5
    assert figures["competency_top1"] == 0.5 and figures["competency_top2"] == 1.0
    f1 = figures["step_char_f1"]
    assert f1["detection"] == 1.0  # the same span
    assert f1["mitigation"] == 0.0 and f1["diagnosis"] == 0.0  # missed; never annotated nor predicted
    assert f1["prevention"] == 0.0  # predicted where the annotator saw none


def test_half_a_step_span_scores_between():
    half = (DETECT[0], DETECT[0] + 12)
    figures = story_metrics([_record()], [_row(spans={"detection": [half], "mitigation": [MITIGATE]})])
    assert 0.5 < figures["step_char_f1"]["detection"] < 1.0 and figures["step_char_f1"]["mitigation"] == 1.0


@pytest.mark.parametrize("rows", [[{"story": None}], [{"error": "x"}]])
def test_no_story_no_figures(rows):
    assert story_metrics([_record()], rows) is None
