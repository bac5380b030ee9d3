"""Story heads: fitted on a tiny model's encoder states, saved beside it, read back by the scorer into every row."""

import json
import shutil

import jsonschema
from helpers import FIXTURES, read_jsonl

from star_scorer.labels import COMPETENCIES, FAILURE_STEPS
from star_scorer.scorer import SCHEMA_PATH, StarScorer
from star_scorer.story import clause_step_targets


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

    scorer = StarScorer.load(model)
    assert scorer.story_heads is not None
    rows = scorer.score_rows([{"id": r["id"], "answer": r["answer"]} for r in records[:3]])
    schema = json.loads(SCHEMA_PATH.read_text())
    for row in rows:
        jsonschema.validate(row, schema)
        story = row["story"]
        assert list(story["competencies"]) != [] and set(story["competencies"]) == set(COMPETENCIES)
        assert abs(sum(story["story_type_probabilities"].values()) - 1) < 1e-3
        for step in story["failure_steps"].values():
            assert all(set(span) == {"start", "end", "text", "probability"} for span in step["spans"])
