import json

import numpy as np

from star_scorer.jobs import calibrate
from star_scorer.labels import FACTS, rubric_score

RNG = np.random.default_rng(0)


def _answers(n: int = 120) -> tuple[list[int], np.ndarray, np.ndarray]:
    """Gold facts drawn at random, a Result in most answers, and clause logits that say them:
    +2 when a fact holds, -2 when not, except B, whose logits all sit 2.5 too low (a shy head)."""
    facts = RNG.random((n, len(FACTS))) < 0.5
    has = RNG.random(n) < 0.9
    gold = [rubric_score(bool(h), {"T": f[0], "B": f[1], "NB": f[1] and f[2]}) for f, h in zip(facts, has)]
    logits = np.where(facts, 2.0, -2.0)
    logits[:, FACTS.index("B")] -= 2.5
    return gold, logits, has


def test_score_offsets_undo_a_shy_fact_head_and_prefer_small_offsets():
    offsets, qwk, check = calibrate.choose_score_offsets([_answers(), _answers()], list(FACTS))
    # B's true clauses sit at -0.5 and its false ones at -4.5: 0.5 ... 2.5 all lift the first over 0 and not the
    # second, and the smallest is kept; for T and NB any of -1.0 ... 1.5 is right, so 0
    assert offsets == {"T": 0.0, "B": 0.5, "NB": 0.0}
    assert qwk == 2.0  # both sets scored exactly
    assert check is None  # no number check asked for


def test_score_offsets_follow_the_rubric_not_each_fact():
    # NB is never read without B: an NB offset alone cannot fix a B the head misses
    gold, logits, has = _answers()
    logits[:, FACTS.index("B")] = -5.0
    offsets, qwk, _ = calibrate.choose_score_offsets([(gold, logits, has)], list(FACTS))
    assert qwk < 1.0 and set(offsets) == {"T", "B", "NB"}


def test_the_result_reach_is_the_one_whose_own_offsets_score_best_and_ties_keep_it_off():
    gold, logits, has = _answers()
    missed = has.copy()
    missed[: len(missed) // 4] = False  # a quarter of the Results missed by the path: those answers score 0
    reached = (gold, logits, has)
    tried = {}
    reach, offsets, qwk, share = calibrate.choose_reach({None: ([(gold, logits, missed)], None), 0.3: ([reached], None)}, list(FACTS),
                                                        tried=tried)
    assert reach == 0.3 and qwk == 1.0 and share is None and offsets == tried[0.3]["offsets"]
    assert tried[None]["qwk"] < 1.0
    same = calibrate.choose_reach({None: ([reached], None), 0.3: ([reached], None)}, list(FACTS))
    assert same[0] is None  # no gain: the path alone


def test_training_chooses_the_score_offsets_on_dev_and_the_named_real_answers(trained):
    root, _ = trained
    model = root / "models" / "tiny"
    saved = json.loads((model / "scorer_config.json").read_text())
    assert set(saved["fact_bias"]) == set(FACTS)
    assert all(saved["fact_bias"][f] in calibrate.SCORE_BIAS for f in FACTS)
    check = json.loads((model / "decoding_calibration.json").read_text())["number_check"]
    assert check["copies"] > 0 and check["at_least"] == 0.0  # the fixture's dev answers carry their rewrites; reported, not imposed
    reaches = json.loads((model / "decoding_calibration.json").read_text())["result_reach"]
    assert set(reaches) == {str(r) for r in calibrate.RESULT_REACH} and saved["result_reach"] in calibrate.RESULT_REACH


def test_rubric_scores_read_nb_from_its_clauses_support():
    """With NB's support, NB holds only where one clause's NB and its sentence's B both clear their offsets, as
    ``decode`` decides it: the answer-level maxima alone would say NB for the second answer."""
    names = list(FACTS)
    logits = np.zeros((2, len(names)))
    logits[:, names.index("T")] = 1.0
    logits[:, names.index("B")] = 1.0
    logits[:, names.index("NB")] = 1.0
    support = np.empty(2, dtype=object)
    support[0] = np.array([[1.0, 1.0]])  # NB and B in one sentence
    support[1] = np.array([[1.0, -3.0]])  # NB beside a technical number; the B is in another sentence
    offsets = {"T": 0.0, "B": 0.0, "NB": 0.0}
    has = np.array([True, True])
    assert calibrate.rubric_scores(logits, has, offsets, names).tolist() == [4, 4]
    assert calibrate.rubric_scores(logits, has, offsets, names, support).tolist() == [4, 3]
    assert calibrate.rubric_scores(logits, has, {"T": 0.0, "B": 3.0, "NB": 0.0}, names, support).tolist() == [4, 4]


def test_score_offsets_pass_the_number_check_when_the_copies_say_so():
    """A head that keeps NB fairly sure once the number is gone (+1 on the copies, +2 on the originals): QWK alone
    is equal for every NB offset from -1.5 to 1.5 and keeps 0, which leaves NB on in every copy; the check asks for
    an offset that turns it off in >= 90% of them, and the smallest such is -1.5."""
    gold, logits, has = _answers()
    names = list(FACTS)
    nb = np.flatnonzero(np.array(gold) == 4)
    copies = logits[nb].copy()
    copies[:, names.index("NB")] = 1.0
    check = (logits[nb], has[nb], None, copies, has[nb], None)
    free, _, share = calibrate.choose_score_offsets([(gold, logits, has)], names)
    assert free["NB"] == 0.0 and share is None
    assert calibrate.number_check(check[:3], check[3:], free, names) == 0.0
    offsets, qwk, share = calibrate.choose_score_offsets([(gold, logits, has)], names, check=check, at_least=0.9)
    assert offsets["NB"] == -1.5 and share == 1.0 and qwk == 1.0


def test_training_searches_a_result_bias_after_task_and_other(trained):
    root, _ = trained
    model = root / "models" / "tiny"
    calibration = json.loads((model / "decoding_calibration.json").read_text())
    tried = [t["label_bias"] for t in calibration["tried"] if "label_bias" in t and "RESULT" in t["label_bias"]]
    assert sorted(t["RESULT"] for t in tried) == sorted(calibrate.RESULT_BIAS)  # each RESULT offset once, the others held
    assert len({(t.get("TASK"), t.get("OTHER")) for t in tried}) == 1  # absent: the start (0) beat every setting
    chosen = calibration["best"]["label_bias"]
    assert chosen.get("TASK", 0.0) in calibrate.TASK_BIAS and chosen.get("OTHER", 0.0) in calibrate.OTHER_BIAS
    assert chosen.get("RESULT", 0.0) in calibrate.RESULT_BIAS
    saved = json.loads((model / "scorer_config.json").read_text())
    assert saved["label_bias"] == chosen  # what decoding reads is what the search chose


def test_qwk_rows_is_cohen_kappa_with_answers_counted_by_their_weights():
    """The vectorised QWK that the bootstrap draws use: each row against gold, an answer drawn k times counted k times."""
    from sklearn.metrics import cohen_kappa_score

    gold = RNG.integers(0, 5, 60)
    rows = RNG.integers(0, 5, (3, 60))
    rows[0] = gold  # perfect agreement
    weights = RNG.integers(0, 3, 60)
    got = calibrate.qwk_rows(gold, rows, weights)
    want = [cohen_kappa_score(np.repeat(gold, weights), np.repeat(r, weights), weights="quadratic", labels=list(range(5))) for r in rows]
    assert np.allclose(got, want) and got[0] == 1.0
    assert np.allclose(calibrate.qwk_rows(gold, rows), [cohen_kappa_score(gold, r, weights="quadratic") for r in rows])



def test_training_fits_the_fact_text_model_and_chooses_its_weight_with_the_offsets(trained):
    from star_scorer.clause_text import FactText

    root, _ = trained
    model = root / "models" / "tiny"
    calibration = json.loads((model / "decoding_calibration.json").read_text())
    weight = calibration["fact_text_weight"]
    assert weight in calibrate.FACT_TEXT_WEIGHTS
    assert {float(w) for w in calibration["fact_text_tried"]} == set(calibrate.FACT_TEXT_WEIGHTS)
    assert calibration["score_offsets_qwk"] == max(calibration["fact_text_tried"].values())
    loaded = FactText.load(model)  # what scoring reads: the chosen weight, or no model where 0 was chosen
    assert (loaded is None) == (weight == 0.0)
    assert loaded is None or loaded.weight == weight
