"""A second annotator scored against the first, on real files, with the metrics `make evaluate` uses."""

from __future__ import annotations

import json

import pytest
from helpers import FIXTURES, write_second

from star_scorer.data import DataError
from star_scorer.research import agreement


def nonspace(text):
    return sum(not c.isspace() for c in text)


def test_identical_labels_agree_fully(tmp_path, records):
    write_second(tmp_path / "a.txt", records[:4])
    write_second(tmp_path / "b.txt", records[4:])
    out = agreement.run(str(FIXTURES / "answers.jsonl"), str(tmp_path))
    f = out["pairs"]["second vs first"]
    assert f["section_macro_f1"] == pytest.approx(1.0)
    assert f["qwk"] == pytest.approx(1.0) and f["exact"] == 1.0
    assert all(v == pytest.approx(1.0) for v in f["facts_f1"].values())


def test_disagreements_are_counted_per_character_and_per_score(tmp_path, records):
    # The second annotator reads fx-0001's TASK as SITUATION, and fx-0007's Result as an Action.
    write_second(tmp_path / "a.txt", records, relabel={("fx-0001", 1): "SITUATION", ("fx-0007", 2): "ACTION"})
    out = agreement.run(str(FIXTURES / "answers.jsonl"), str(tmp_path))
    f = out["pairs"]["second vs first"]

    task_chars = sum(nonspace(s["text"]) for r in records for s in r["segments"] if s["label"] == "TASK")
    moved = nonspace(records[0]["segments"][1]["text"])
    recall = (task_chars - moved) / task_chars
    assert f["per_label_f1"]["TASK"] == pytest.approx(2 * recall / (1 + recall))
    # fx-0007 loses its only Result: it scores 0 there, against 3 from the first annotator
    second = agreement.second_records(records, tmp_path)
    assert second[6]["result_quality"] == 0 and not any(second[6]["result_facts"].values())
    assert f["exact"] == pytest.approx(7 / 8)
    assert f["within_one"] == pytest.approx(7 / 8)


def test_bad_second_labels_name_what_was_expected(tmp_path, records):
    write_second(tmp_path / "a.txt", records[:-1])
    with pytest.raises(DataError, match=r"missing \['fx-0008'\]"):
        agreement.run(str(FIXTURES / "answers.jsonl"), str(tmp_path))

    changed = [dict(r) for r in records]
    changed[2] = {**records[2], "segments": [dict(records[2]["segments"][0], text="Changed words."), *records[2]["segments"][1:]]}
    write_second(tmp_path / "a.txt", changed)
    with pytest.raises(DataError, match=r"fx-0003: second labels' text differs from the answer at char 0"):
        agreement.run(str(FIXTURES / "answers.jsonl"), str(tmp_path))

    (tmp_path / "a.txt").write_text("### id: fx-0001\nfacts: T\n[RESULTS] Our parcel-delay model\n")
    with pytest.raises(DataError, match=r"a.txt:3: expected '\[LABEL\] text'"):
        agreement.run(str(FIXTURES / "answers.jsonl"), str(tmp_path))


def test_cli_writes_report_and_figures(tmp_path, records):
    (tmp_path / "labels").mkdir()
    write_second(tmp_path / "labels" / "a.txt", records, facts={"fx-0001": ["T", "B"]})
    out_dir = tmp_path / "report"
    agreement.main(["--data", str(FIXTURES / "answers.jsonl"), "--second", str(tmp_path / "labels"), "--out", str(out_dir),
                    "--baselines", str(FIXTURES / "answers.jsonl")])
    figures = json.loads((out_dir / "agreement.json").read_text())
    assert figures["pairs"]["second vs first"]["facts_f1"]["NB"] < 1.0  # fx-0001 lost NB: scored 3, not 4
    # the baselines are scored against each annotator; only fx-0001's facts differ, so their sections agree equally
    base_first, base_second = figures["pairs"]["baseline vs first"], figures["pairs"]["baseline vs second"]
    assert base_first["section_macro_f1"] == pytest.approx(base_second["section_macro_f1"])
    assert 0.0 < base_first["section_macro_f1"] <= 1.0
    assert "| second vs first |" in (out_dir / "report.md").read_text()


def test_data_check_validates_second_labels_beside_their_split(tmp_path, records):
    from star_scorer.datatools.corpus import SPLITS
    from star_scorer.datatools.datacheck import check

    parts = {"train": records[:2], "dev": records[2:3], "other_writers": records[3:4], "test": records[4:]}
    for name in SPLITS:
        part = parts[name]
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in part))
    (tmp_path / "second_labels" / "test").mkdir(parents=True)
    write_second(tmp_path / "second_labels" / "test" / "a.txt", records[4:7])
    problems = check(tmp_path, tmp_path / "no-raw")
    assert any("missing ['fx-0008']" in p for p in problems), problems
    write_second(tmp_path / "second_labels" / "test" / "a.txt", records[4:])
    assert not any("second_labels" in p for p in check(tmp_path, tmp_path / "no-raw"))


def test_second_steps_are_scored_per_character_against_the_first(tmp_path, records):
    """A second step annotator's file: detection the same text, mitigation a shorter part of the first's span, and a
    prevention the first annotator did not mark; a text not in the answer is counted, not matched."""
    first = dict(records[0], failure_steps={
        "detection": ["Our parcel-delay model started flagging almost every order from one depot as late."],
        "mitigation": ["I rolled back to the previous model, patched the timestamp parsing"]})
    (tmp_path / "s1_steps.txt").write_text(
        "=== fx-0001\nsteps: detection mitigation prevention\n"
        "step detection: Our parcel-delay model started flagging almost every order from one depot as late.\n"
        "step mitigation: I rolled back to the previous model\n"
        "step prevention: added a drift alert on that feed\n"
        "step prevention: a text the answer does not hold\n\n"
        "=== fx-0002\nsteps: none\n")
    second = agreement.parse_step_labels(tmp_path)
    assert second["fx-0002"] == {} and len(second["fx-0001"]["prevention"]) == 2
    out = agreement.step_agreement([first, records[1]], second)  # fx-0002 has no first step annotation: left out
    f1 = out["pairs"]["second vs first"]
    assert out["n_answers"] == 1 and out["unmatched_texts"] == 1
    assert f1["detection"] == 1.0 and f1["diagnosis"] == 0.0 and f1["prevention"] == 0.0
    short, full = nonspace("I rolled back to the previous model"), nonspace(first["failure_steps"]["mitigation"][0])
    assert f1["mitigation"] == pytest.approx(2 * short / (short + full))
    (tmp_path / "bad.txt").write_text("=== fx-0001\nstep repair: something\n")
    with pytest.raises(ValueError, match="bad.txt:2: expected 'step <detection"):
        agreement.parse_step_labels(tmp_path)
