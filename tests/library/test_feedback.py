"""Feedback lines and ownership come from the sections and the rubric facts, each naming its span."""

from star_scorer.feedback import feedback_lines, ownership


def sections_of(text: str, parts: list[tuple[str, str]]) -> list[dict]:
    out = []
    for label, piece in parts:
        start = text.index(piece)
        out.append({"label": label, "start": start, "end": start + len(piece), "text": piece})
    return out


def quality(holds: dict, evidence_text: str, text: str) -> dict:
    start = text.index(evidence_text)
    ev = {"start": start, "end": start + len(evidence_text), "text": evidence_text, "probability": 0.9, "holds": True}
    return {"score": 0, "probabilities": [1, 0, 0, 0, 0], "facts": {}, "evidence": {f: ev | {"holds": h} for f, h in holds.items()}}


def test_a_technical_result_without_effect_asks_for_the_effect_and_names_its_clause():
    text = "The queue was slow. We profiled it and we rewrote the parser. Latency fell from 900 ms to 120 ms."
    secs = sections_of(text, [("SITUATION", "The queue was slow."), ("ACTION", "We profiled it and we rewrote the parser."),
                              ("RESULT", "Latency fell from 900 ms to 120 ms.")])
    lines = feedback_lines(text, secs, quality({"T": True, "B": False, "NB": False, "V": False}, "Latency fell from 900 ms to 120 ms.", text))
    assert [line["code"] for line in lines] == ["no_task", "we_throughout", "technical_only"]
    assert lines[1]["span"]["text"] == "We profiled it and we rewrote the parser."
    assert lines[2]["span"]["text"] == "Latency fell from 900 ms to 120 ms." and "with a number" in lines[2]["text"]
    assert ownership(text, secs) == {"i": 0, "we": 2, "share_i": 0.0}


def test_a_strong_result_is_said_so_and_an_answer_without_result_gets_one_line():
    text = "I owned the model. I retrained it. Recall rose to 0.9, so about 300 fewer orders a week were blocked."
    secs = sections_of(text, [("TASK", "I owned the model."), ("ACTION", "I retrained it."),
                              ("RESULT", "Recall rose to 0.9, so about 300 fewer orders a week were blocked.")])
    q = quality({"T": True, "B": True, "NB": True, "V": False}, "so about 300 fewer orders a week were blocked", text)
    assert [line["code"] for line in feedback_lines(text, secs, q)] == ["two_part_result"]
    assert ownership(text, secs) == {"i": 1, "we": 0, "share_i": 1.0}
    assert [line["code"] for line in feedback_lines(text, secs[:2], q)] == ["no_result"]
    assert ownership(text, secs[:1])["share_i"] is None


def test_a_failure_story_with_a_fix_and_no_prevention_is_told_so():
    text = "The model broke. I rolled it back within the hour. Errors fell."
    secs = sections_of(text, [("SITUATION", "The model broke."), ("ACTION", "I rolled it back within the hour."), ("RESULT", "Errors fell.")])
    fix = {"start": text.index("I rolled"), "end": text.index("hour.") + 5, "text": "I rolled it back within the hour.", "probability": 0.9}
    step = {"present": False, "probability": 0.1, "spans": []}
    story = {"story_type": "failure", "story_type_probabilities": {}, "competencies": {},
             "failure_steps": {"detection": step, "diagnosis": step, "mitigation": {"present": True, "probability": 0.9, "spans": [fix]},
                               "prevention": step}}
    q = quality({"T": True, "B": False, "NB": False, "V": False}, "Errors fell.", text)
    lines = feedback_lines(text, secs, q, story)
    assert "no_prevention" in [line["code"] for line in lines]
    assert next(line for line in lines if line["code"] == "no_prevention")["span"]["text"] == "I rolled it back within the hour."
    done = story | {"failure_steps": story["failure_steps"] | {"prevention": {"present": True, "probability": 0.8, "spans": [fix]}}}
    assert "no_prevention" not in [line["code"] for line in feedback_lines(text, secs, q, done)]
