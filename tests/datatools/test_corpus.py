import json
import re

import pytest

from star_scorer.datatools.corpus import RawFormatError, build, parse_raw_file


def test_raw_parser_names_file_and_line(tmp_path):
    path = tmp_path / "b.txt"
    path.write_text("### id: x-1\nstory: x-1\nquestion: q\nstyle: spoken\ndomain: d\ncompetency: conflict\n"
                    "story_type: success\nfacts: T\n[SITUATION] Text.\n[CONTEXT] More.\n")
    with pytest.raises(RawFormatError, match=re.escape(f"{path}:10: expected a label in")):
        parse_raw_file(path)


def test_raw_parser_rejects_facts_without_result(tmp_path):
    path = tmp_path / "b.txt"
    path.write_text("### id: x-1\nstory: x-1\nquestion: q\nstyle: spoken\ndomain: d\ncompetency: conflict\n"
                    "story_type: success\nfacts: T B\n[SITUATION] Text.\n[ACTION] Did it.\n")
    with pytest.raises(RawFormatError, match="has no \\[RESULT\\] segment, so its facts must be 'none'"):
        parse_raw_file(path)


def test_build_keeps_blind_and_other_writer_hands_out_of_training(tmp_path):
    raw = tmp_path / "raw"
    for hand in ("w1", "w7", "t1"):
        (raw / hand).mkdir(parents=True)
        (raw / hand / "batch01.txt").write_text("".join(
            f"### id: {hand}-{i:04d}\nstory: {hand}-{i:04d}\nquestion: q\nstyle: written\ndomain: d\ncompetency: conflict\n"
            f"story_type: success\nfacts: none\n[SITUATION] Story {i} of {hand}.\n[ACTION] I acted.\n" for i in range(1, 21)))
    counts = build(raw, tmp_path / "out")
    rows = {name: [json.loads(line) for line in (tmp_path / "out" / f"{name}.jsonl").read_text().splitlines()] for name in counts}
    originals = {name: [r for r in recs if "derived" not in r] for name, recs in rows.items()}
    assert len(originals["test"]) == 20 == counts["test"] and len(originals["other_writers"]) == 20 == counts["other_writers"]
    assert len(originals["train"]) + len(originals["dev"]) == 20
    # only training answers get counterfactual copies, each of a training story
    assert all("derived" not in r for name in ("dev", "test", "other_writers") for r in rows[name])
    train_stories = {r["story"] for r in originals["train"]}
    assert all(r["story"] in train_stories and r["id"].startswith(r["story"] + "~") for r in rows["train"] if "derived" in r)
    hands = {name: {r["hand"] for r in recs} for name, recs in rows.items()}
    assert hands["test"] == {"t1"} and hands["other_writers"] == {"w7"} and hands["train"] | hands["dev"] == {"w1"}




HEADER = "### id: x-1\nstory: x-1\nquestion: q\nstyle: spoken\ndomain: d\ncompetency: production_failure\nstory_type: failure\nfacts: T\n"
BODY = ("[SITUATION] The alert fired at noon.\n[ACTION] I found the bad join, and I rolled back the model.\n"
        "[RESULT] Errors fell to zero.\nevidence T: Errors fell to zero.\n")


def test_failure_steps_are_parsed_checked_and_validated(tmp_path):
    from star_scorer.data import step_spans, validate_record

    path = tmp_path / "b.txt"
    path.write_text(HEADER + BODY + "steps: detection diagnosis mitigation\nstep detection: The alert fired at noon.\n"
                    "step diagnosis: I found the bad join\nstep mitigation: I rolled back the model\n")
    (rec,) = parse_raw_file(path)
    assert rec["failure_steps"] == {"detection": ["The alert fired at noon."], "diagnosis": ["I found the bad join"],
                                    "mitigation": ["I rolled back the model"]}
    spans = step_spans(validate_record(rec, "x"))
    assert rec["answer"][slice(*spans["mitigation"][0])] == "I rolled back the model"
    path.write_text(HEADER + BODY + "steps: none\n")
    assert parse_raw_file(path)[0]["failure_steps"] == {}
    path.write_text(HEADER + BODY)
    assert "failure_steps" not in parse_raw_file(path)[0]
    for bad, message in [
        ("steps: mitigation detection\nstep detection: The alert fired at noon.\nstep mitigation: I rolled back the model\n", "in that order"),
        ("steps: prevention\nstep prevention: I added a monitor\n", "exact part of one segment"),
        ("steps: detection prevention\nstep detection: The alert fired at noon.\n", "none for \\['prevention'\\]"),
        ("steps: detection\nstep detection: The alert fired at noon. I found the bad join\n", "exact part of one segment"),
    ]:
        path.write_text(HEADER + BODY + bad)
        with pytest.raises(RawFormatError, match=message):
            parse_raw_file(path)
