import random

import pytest

from star_scorer.data import validate_record
from star_scorer.jobs.augment import TRANSFORMS, augment_records, drop, markers, strip_marker, transcript, vague


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


def test_replace_mode_keeps_the_set_size_and_swaps_in_copies(records):
    from star_scorer.jobs.train import with_copies

    copies = augment_records(records, ["reorder", "drop"], fraction=0.5, seed=1)
    replaced = with_copies(records, copies, "replace")
    assert len(replaced) == len(records)
    swapped = [r for r in replaced if "#" in r["id"]]
    assert swapped and len({r["id"].split("#")[0] for r in swapped}) == len(swapped)
    assert [r["id"].split("#")[0] for r in replaced] == [r["id"] for r in records]
    assert len(with_copies(records, copies, "add")) == len(records) + len(copies)
    with pytest.raises(ValueError, match="expected augment_mode add or replace"):
        with_copies(records, copies, "mix")
