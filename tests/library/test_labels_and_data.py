import json
import re

import pytest

from star_scorer.data import DataError, load_jsonl, segment_spans, validate_record
from star_scorer.labels import rubric_score


@pytest.mark.parametrize(
    ("has_result", "facts", "score"),
    [
        (False, {}, 0),
        (True, {}, 1),
        (True, {"V": True}, 1),
        (True, {"T": True}, 2),
        (True, {"B": True}, 2),
        (True, {"B": True, "NB": True}, 3),
        (True, {"T": True, "B": True}, 3),
        (True, {"T": True, "B": True, "NB": True}, 4),
        (True, {"T": True, "B": True, "NB": True, "V": True}, 4),
    ],
)
def test_rubric_table(has_result, facts, score):
    full = {k: facts.get(k, False) for k in ("T", "B", "NB", "V")}
    assert rubric_score(has_result, full) == score


def test_segment_spans_index_the_joined_answer(records):
    for rec in records:
        for span, seg in zip(segment_spans(rec["segments"]), rec["segments"]):
            assert rec["answer"][span.start : span.end] == seg["text"]


def _write(tmp_path, recs):
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    return path


def test_loader_names_file_line_and_field(tmp_path, records):
    bad = dict(records[1], answer=records[1]["answer"] + " extra")
    path = _write(tmp_path, [records[0], bad])
    with pytest.raises(DataError, match=re.escape(f"{path}:2: field 'answer': expected the segment texts joined by single spaces")):
        load_jsonl(path)


def test_loader_rejects_score_that_breaks_the_rubric(tmp_path, records):
    bad = dict(records[0], result_quality=2)
    path = _write(tmp_path, [bad])
    with pytest.raises(DataError, match=re.escape(f"{path}:1: field 'result_quality': the rubric gives 4")):
        load_jsonl(path)


def test_loader_rejects_unknown_label_and_bad_json(tmp_path, records):
    rec = json.loads(json.dumps(records[0]))
    rec["segments"][0]["label"] = "CONTEXT"
    with pytest.raises(DataError, match=r"segments\[0\]\.label: expected one of .* found 'CONTEXT'"):
        validate_record(rec, "x")
    path = tmp_path / "broken.jsonl"
    path.write_text('{"id": 1,\n')
    with pytest.raises(DataError, match=re.escape(f"{path}:1: expected a JSON object, found invalid JSON")):
        load_jsonl(path)


def test_loader_rejects_duplicate_ids(tmp_path, records):
    path = _write(tmp_path, [records[0], records[0]])
    with pytest.raises(DataError, match="already used on line 1"):
        load_jsonl(path)
