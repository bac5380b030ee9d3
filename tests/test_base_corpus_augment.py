import json
import random
import re

import pytest

from pipeline.augment import TRANSFORMS, augment_records, drop, markers, strip_marker, transcript, vague
from pipeline.base_model import DEFAULT_BASE_MODEL, resolve_base_model
from pipeline.corpus import RawFormatError, build, parse_raw_file
from pipeline.data import validate_record


def test_default_base_model_resolves_offline_and_verified():
    path, local_only = resolve_base_model(DEFAULT_BASE_MODEL)
    assert local_only and path.endswith("model")


def test_hub_id_needs_offline_off():
    with pytest.raises(FileNotFoundError, match="set offline: false"):
        resolve_base_model("someone/some-model", offline=True)


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


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_transforms_keep_records_valid(name, records):
    rng = random.Random(0)
    for rec in records:
        new = TRANSFORMS[name](rec, rng)
        validate_record(new, f"{name}:{rec['id']}")
        assert new["id"] != rec["id"]


def test_transcript_lowercases_and_strips_punctuation_keeping_labels(records):
    new = transcript(records[0], random.Random(0))
    assert new["answer"] == new["answer"].lower() and "," not in new["answer"]
    assert [s["label"] for s in new["segments"]] == [s["label"] for s in records[0]["segments"]]
    assert "0.83" not in records[0]["answer"] or "0.83" in new["answer"]


def test_dropping_the_result_scores_zero(records):
    new = drop(records[0], random.Random(0), label="RESULT")
    assert new["result_quality"] == 0 and not any(new["result_facts"].values())
    kept = drop(records[0], random.Random(0), label="TASK")
    assert kept["result_quality"] == records[0]["result_quality"]


def test_marker_removal():
    assert strip_marker("As a result, churn fell.") == "Churn fell."
    assert strip_marker("My task was to fix it.") == "Fix it."
    assert strip_marker("We fixed it.") == "We fixed it."
    rec = {"id": "m", "segments": [{"text": "The situation was that X broke.", "label": "SITUATION"}],
           "result_facts": {"T": False, "B": False, "NB": False, "V": False}}
    assert markers(rec, random.Random(0))["answer"] == "X broke."


def test_augmentation_is_seeded(records):
    a = augment_records(records, ["fillers", "reorder"], fraction=0.5, seed=3)
    b = augment_records(records, ["fillers", "reorder"], fraction=0.5, seed=3)
    c = augment_records(records, ["fillers", "reorder"], fraction=0.5, seed=4)
    assert a == b and a != c
    with pytest.raises(ValueError, match="expected transforms from"):
        augment_records(records, ["shout"], 0.5, 0)


def test_vague_replaces_the_result_and_scores_one(records):
    new = vague(records[0], random.Random(0))
    validate_record(new, "vague")
    results = [s["text"] for s in new["segments"] if s["label"] == "RESULT"]
    assert len(results) == 1 and new["result_quality"] == 1
    assert "900 a day" not in new["answer"]


def test_baselines_fit_and_score(records, tmp_path):
    from pipeline.baselines import rule_score, run, sentence_units

    text = "we fixed it then latency fell. Good! and more words here"
    assert [text[s:e] for s, e in sentence_units(text)] == ["we fixed it then latency fell.", "Good!", "and more words here"]
    assert rule_score("")[0] == 0
    assert rule_score("Everyone was happy with it.")[0] == 1
    assert rule_score("Recall went from 0.61 to 0.74, and the queue shrank by about 40% for the support team.")[0] == 4
    path = tmp_path / "fx.jsonl"
    copies = [dict(r, id=f"{r['id']}-{k}") for k in range(3) for r in records]
    path.write_text("".join(json.dumps(r) + "\n" for r in copies))
    out = run(str(path), [str(path)], tmp_path / "b")
    figures = out["fx"]["tfidf-lr sentences + tfidf-lr score"]
    assert 0.0 <= figures["section_macro_f1"] <= 1.0
    assert (tmp_path / "b" / "fx.json").exists()


def test_replace_mode_keeps_the_set_size_and_swaps_in_copies(records):
    from pipeline.train import with_copies

    copies = augment_records(records, ["reorder", "drop"], fraction=0.5, seed=1)
    replaced = with_copies(records, copies, "replace")
    assert len(replaced) == len(records)
    swapped = [r for r in replaced if "#" in r["id"]]
    assert swapped and len({r["id"].split("#")[0] for r in swapped}) == len(swapped)
    assert [r["id"].split("#")[0] for r in replaced] == [r["id"] for r in records]
    assert len(with_copies(records, copies, "add")) == len(records) + len(copies)
    with pytest.raises(ValueError, match="expected augment_mode add or replace"):
        with_copies(records, copies, "mix")
