import re

import numpy as np
import pytest
import torch

from star_scorer.data import segment_spans
from star_scorer.decode import (
    RUN_ON,
    _ends_with,
    _viterbi_dense,
    quality_from_clauses,
    reach_result,
    spans_from_words,
    switch_penalties,
    trim_evidence,
    viterbi,
    word_scores,
)
from star_scorer.features import (
    IGNORE_INDEX,
    NUMBER_FLAGS,
    WindowCollator,
    build_example,
    char_labels,
    clause_features,
    clause_spans,
    encode,
    text_units,
    token_labels,
    window_ranges,
)
from star_scorer.labels import LABEL2ID, SECTION_LABELS
from star_scorer.modeling import answer_tokens


@pytest.mark.parametrize("kind", ["fixed", "balanced"])
@pytest.mark.parametrize(("n", "window", "stride"), [(5, 10, 2), (10, 10, 2), (11, 10, 2), (100, 30, 8), (1000, 510, 128),
                                                     (255, 254, 64), (300, 254, 64), (445, 254, 64), (446, 254, 64)])
def test_windows_cover_every_token_with_the_overlap(n, window, stride, kind):
    ranges = window_ranges(n, window, stride, kind)
    covered = np.zeros(n, dtype=int)
    for s, e in ranges:
        assert e - s <= window
        covered[s:e] += 1
    assert covered.min() >= 1
    assert ranges[0][0] == 0 and ranges[-1][1] == n
    for (_, e1), (s2, _) in zip(ranges, ranges[1:]):
        assert e1 - s2 >= stride  # consecutive windows overlap by at least the stride


def test_balanced_windows_read_fewer_tokens_in_as_many_windows():
    for n in range(255, 1200, 7):
        fixed, balanced = window_ranges(n, 254, 64, "fixed"), window_ranges(n, 254, 64, "balanced")
        assert len(balanced) == len(fixed)
        assert len({e - s for s, e in balanced}) == 1  # one width
        assert sum(e - s for s, e in balanced) <= sum(e - s for s, e in fixed)
    assert window_ranges(300, 254, 64, "balanced") == [(0, 182), (118, 300)]
    with pytest.raises(ValueError, match="expected windows in"):
        window_ranges(300, 254, 64, "sliding")


def test_window_larger_than_overlap_is_required():
    with pytest.raises(ValueError, match="expected the window"):
        window_ranges(100, 8, 8)


def test_token_labels_follow_char_spans(tokenizer, records):
    for rec in records:
        enc = encode(tokenizer, rec["answer"], 512, 128)
        labels = token_labels(enc.offsets, char_labels(rec["answer"], rec["segments"]))
        spans = segment_spans(rec["segments"])
        for (start, _), lab in zip(enc.offsets, labels):
            assert SECTION_LABELS[lab] == next(s.label for s in spans if s.start <= start < s.end)


def _oracle_decode(tokenizer, rec, max_length, stride):
    """Decode from one-hot window log-probs made from gold labels: must give back the gold spans."""
    enc = encode(tokenizer, rec["answer"], max_length, stride)
    gold = token_labels(enc.offsets, char_labels(rec["answer"], rec["segments"]))
    onehot = np.full((len(gold), len(SECTION_LABELS)), -20.0)
    onehot[np.arange(len(gold)), gold] = 0.0
    # what the encoder would give per window if it knew the answer: the collator's token_pos
    # must let the model put the windows back together token for token
    batch = WindowCollator(tokenizer.pad_token_id)([build_example(tokenizer, rec, max_length, stride)])
    pos = batch["token_pos"]
    hidden = torch.zeros((*pos.shape, len(SECTION_LABELS)))
    hidden[pos >= 0] = torch.tensor(onehot, dtype=torch.float)[pos[pos >= 0]]
    merged = answer_tokens(hidden, batch["answer_index"], pos, batch["token_unit"].shape)[0].numpy()
    np.testing.assert_allclose(merged, onehot, atol=1e-6)
    words, scores = word_scores(rec["answer"], enc.offsets, merged)
    path = viterbi(scores, switch_penalty=1.0)
    return enc, spans_from_words(rec["answer"], words, [SECTION_LABELS[k] for k in path])


def test_long_answer_windows_merge_back_to_gold_spans(tokenizer, records):
    rec = records[0]
    long = dict(rec, segments=rec["segments"] * 12)  # ~1,000 words: many windows
    long["answer"] = " ".join(s["text"] for s in long["segments"])
    enc, spans = _oracle_decode(tokenizer, long, max_length=64, stride=16)
    assert len(enc.windows) > 10
    merged_gold = []
    for s in segment_spans(long["segments"]):
        if merged_gold and merged_gold[-1][2] == s.label:
            merged_gold[-1] = (merged_gold[-1][0], s.end, s.label)
        else:
            merged_gold.append((s.start, s.end, s.label))
    assert [(s["start"], s["end"], s["label"]) for s in spans] == merged_gold


def test_spans_cover_all_non_whitespace_in_order():
    text = "  Hello there.   We did it.\nIt worked!  "
    words = [(2, 7), (8, 14), (17, 19), (20, 23), (24, 27), (28, 31), (32, 39)]
    spans = spans_from_words(text, words, ["OTHER", "OTHER", "ACTION", "ACTION", "ACTION", "RESULT", "RESULT"])
    assert [s["label"] for s in spans] == ["OTHER", "ACTION", "RESULT"]
    covered = set()
    for s in spans:
        assert text[s["start"] : s["end"]] == s["text"]
        covered |= set(range(s["start"], s["end"]))
    assert {i for i, c in enumerate(text) if not c.isspace()} <= covered
    assert all(a["end"] <= b["start"] for a, b in zip(spans, spans[1:]))


def test_viterbi_penalty_smooths_a_single_flicker():
    scores = np.log(np.array([[0.9, 0.1], [0.45, 0.55], [0.9, 0.1]]))
    assert viterbi(scores, 0.0).tolist() == [0, 1, 0]
    assert viterbi(scores, 1.0).tolist() == [0, 0, 0]


def test_viterbi_finds_the_path_the_search_over_every_label_pair_finds():
    rng = np.random.default_rng(0)
    for trial in range(500):
        n = int(rng.integers(1, 30))
        scores = rng.normal(size=(n, 5)) * rng.choice([0.1, 1.0, 5.0])
        if trial % 3 == 0:
            scores = np.round(scores)  # ties: both keep the lower label
        penalties = rng.choice([0.0, 0.1, 0.5, 2.0], size=n - 1)
        assert viterbi(scores, penalties).tolist() == _viterbi_dense(scores, penalties).tolist()
    negative = np.full(2, -3.0)  # a bonus for changing: only the dense search is exact, and it is used
    scores = np.log(np.array([[0.9, 0.1], [0.9, 0.1], [0.9, 0.1]]))
    assert viterbi(scores, negative).tolist() == _viterbi_dense(scores, negative).tolist() == [0, 1, 0]


@pytest.mark.parametrize("word", ["done.", 'done."', "done.)", "really?!", "done", ".", '"', "3.5", "fix,", "fix\u2014", "x-", 'x,"'])
def test_word_ends_read_as_the_sentence_and_clause_patterns_do(word):
    assert _ends_with(word, ".!?") == bool(re.search(r"[.!?][\"')\]]*$", word))
    assert _ends_with(word, ",;:\u2014-") == bool(re.search(r"[,;:\u2014-][\"')\]]*$", word))


def _words(text):
    out, pos = [], 0
    for w in text.split():
        start = text.index(w, pos)
        out.append((start, start + len(w)))
        pos = start + len(w)
    return out


def test_switch_penalties_follow_punctuation_and_connectives_in_unpunctuated_speech():
    spoken = "we had " + "a problem " * RUN_ON + "and i was asked to fix it so i did"
    words = _words(spoken)
    after = [spoken[s:e] for s, e in words][1:]  # the word each penalty stands before
    off = switch_penalties(spoken, words, 4.0, 1.0, 0.1)
    on = switch_penalties(spoken, words, 4.0, 1.0, 0.1, connective=0.5)
    assert set(off) == {4.0}  # no punctuation: every change costs the mid-clause price
    assert [after[i] for i in np.flatnonzero(on == 0.5)] == ["and", "so"]
    assert set(on[[i for i, w in enumerate(after) if w not in ("and", "so")]]) == {4.0}

    written = "It broke, and we lost a day. And then I fixed it and wrote it up."
    pens = switch_penalties(written, _words(written), 4.0, 1.0, 0.1, connective=0.5)
    after = [written[s:e] for s, e in _words(written)][1:]
    assert pens[after.index("and")] == 1.0 and pens[after.index("And")] == 0.1  # after a comma; after a sentence end
    assert pens[len(after) - 1 - after[::-1].index("and")] == 4.0  # a short punctuated sentence is not a run-on


NAMES = ["T", "B", "NB", "V"]
ANSWER = "We retrained the model weekly. Recall rose to 0.86, which cut the review queue by 40%. I learned a lot."


def _clauses_and_sections(text, result_from):
    clauses = clause_spans(text)
    at = text.index(result_from)
    sections = [{"label": "ACTION", "start": 0, "end": at - 1}, {"label": "RESULT", "start": at, "end": len(text)}]
    return clauses, sections


def test_opener_penalty_lets_a_section_start_at_a_clause_opener_in_punctuated_text():
    text = "Our churn model had drifted and I had to retrain it before the renewals. Then I did."
    words = _words(text)
    after = [text[s:e] for s, e in words][1:]
    off = switch_penalties(text, words, 4.0, 1.0, 0.1)
    on = switch_penalties(text, words, 4.0, 1.0, 0.1, opener=0.5)
    assert off[after.index("and")] == 4.0 and on[after.index("and")] == 0.5
    assert on[after.index("Then")] == 0.1  # a sentence end stays the cheapest
    assert sum(on == 0.5) == 1  # "I had to retrain it before": no other opener


def test_units_can_be_clauses(tokenizer):
    from star_scorer.features import answer_inputs

    text = "Our churn model had drifted, and I had to retrain it. I retrained it weekly."
    _, sentence_units, _ = answer_inputs(tokenizer, text, 64, 16, "sentences")
    _, clause_units, inputs = answer_inputs(tokenizer, text, 64, 16, "clauses")
    assert len(sentence_units) == 2 and [text[a:b] for a, b in clause_units] == [
        "Our churn model had drifted,", "and I had to retrain it.", "I retrained it weekly."]
    assert inputs["token_unit"] == inputs["token_clause"]
    with pytest.raises(ValueError, match=r"expected units in \['sentences', 'clauses'\], found 'words'"):
        answer_inputs(tokenizer, text, 64, 16, "words")


def test_quality_is_decided_by_the_result_clauses_and_shows_their_evidence():
    clauses, sections = _clauses_and_sections(ANSWER, "Recall rose")
    texts = [ANSWER[a:b] for a, b in clauses]
    assert texts == ["We retrained the model weekly.", "Recall rose to 0.86,", "which cut the review queue by 40%.", "I learned a lot."]
    logits = np.full((4, 4), -4.0)
    logits[0] = 4.0  # the ACTION clause "has" every fact: it must not count, it is not RESULT
    logits[1, 0] = 3.0  # T in "Recall rose to 0.86,"
    logits[2, 1:3] = 3.0  # B and NB in the queue clause
    q = quality_from_clauses(ANSWER, clauses, logits, sections, NAMES)
    assert q["score"] == 4
    assert q["evidence"]["T"]["text"] == "Recall rose to 0.86" and q["evidence"]["T"]["holds"]
    assert q["evidence"]["NB"]["text"] == "cut the review queue by 40%"  # the clause's own words, no "which" or "."
    assert not q["evidence"]["V"]["holds"] and q["facts"]["V"] < 0.5
    assert abs(sum(q["probabilities"]) - 1.0) < 1e-3 and q["probabilities"][0] == 0.0
    assert int(np.argmax(q["probabilities"])) == 4
    # evidence widens over a neighbouring clause of the same sentence that is as sure
    logits[2, 0] = 2.0
    assert quality_from_clauses(ANSWER, clauses, logits, sections, NAMES)["evidence"]["T"]["text"] == (
        "Recall rose to 0.86, which cut the review queue by 40%")
    # no RESULT section: score 0, no facts, no evidence, whatever the clauses say
    none = quality_from_clauses(ANSWER, clauses, logits, [{"label": "ACTION", "start": 0, "end": len(ANSWER)}], NAMES)
    assert none["score"] == 0 and none["probabilities"][0] == 1.0
    assert all(v == 0.0 for v in none["facts"].values()) and all(v is None for v in none["evidence"].values())


def test_an_answer_with_no_result_on_its_path_takes_the_clauses_that_lean_to_result():
    clauses = clause_spans(ANSWER)  # the four clauses of ANSWER, the last sentence one of them
    words = _words(ANSWER)
    action, result = 0, 1
    leaning = np.array([0.1] * 5 + [0.35] * 4 + [0.2] * 7 + [0.1] * 4)  # "Recall rose to 0.86," leans to RESULT
    assert len(leaning) == len(words)
    path = np.full(len(words), action)
    reached = reach_result(path, leaning, words, clauses, result, reach=0.3)
    assert [ANSWER[a:b] for (a, b), k in zip(words, reached) if k == result] == ["Recall", "rose", "to", "0.86,"]
    assert (reach_result(path, leaning, words, clauses, result, reach=0.4) == action).all()  # none this sure: no Result
    on_path = path.copy()
    on_path[-4:] = result  # the path found a Result already ("I learned a lot."): it stands as it is
    assert (reach_result(on_path, leaning, words, clauses, result, reach=0.3) == on_path).all()


@pytest.mark.parametrize(("effect", "quantified"), [
    ("which cut the review queue by 40%.", True),
    ("which cut the review queue by about a third.", True),
    ("which cut the review queue by twelve tickets a day.", True),
    ("which cut the review queue a lot.", False),
    ("which cut the review queue by several tickets.", False),  # a loose quantity word is not a number
])
def test_nb_holds_only_in_a_clause_that_states_a_number(effect, quantified):
    text = f"We retrained the model weekly. Recall rose to 0.86, {effect} I learned a lot."
    clauses, sections = _clauses_and_sections(text, "Recall rose")
    logits = np.full((len(clauses), 4), -4.0)
    logits[1, 0] = 3.0
    logits[2, 1:3] = 3.0  # the model says B and NB in the queue clause, whatever it says
    q = quality_from_clauses(text, clauses, logits, sections, NAMES)
    assert q["evidence"]["NB"]["holds"] is quantified and q["score"] == (4 if quantified else 3)
    assert q["evidence"]["B"]["holds"]


def test_nb_needs_the_b_in_its_own_sentence():
    """A number next to a technical outcome does not quantify a downstream effect told in another sentence
    (LABELING.md: the effect carries the number); in the effect's own sentence it does."""
    text = "We retrained the model weekly. Latency fell to 80 ms, which was 40% lower. Support was much happier. I learned a lot."
    clauses, sections = _clauses_and_sections(text, "Latency fell")
    texts = [text[a:b] for a, b in clauses]
    logits = np.full((len(clauses), 4), -4.0)
    logits[texts.index("Latency fell to 80 ms,"), 0] = 3.0  # T
    logits[texts.index("which was 40% lower."), 2] = 3.0  # the model's NB sits on the technical sentence's number
    logits[texts.index("Support was much happier."), 1] = 3.0  # B, unquantified, in the next sentence
    q = quality_from_clauses(text, clauses, logits, sections, NAMES)
    assert q["evidence"]["B"]["holds"] and not q["evidence"]["NB"]["holds"] and q["score"] == 3
    logits[texts.index("Latency fell to 80 ms,"), 1] = 3.0  # B in the number's own sentence: NB holds
    q = quality_from_clauses(text, clauses, logits, sections, NAMES)
    assert q["evidence"]["NB"]["holds"] and q["evidence"]["NB"]["text"] == "was 40% lower" and q["score"] == 4


def test_b_evidence_is_the_nb_clause_when_the_effect_is_quantified():
    """LABELING.md gives B and NB one evidence clause, the downstream effect with its number: a surer B on a
    claim without one does not take B's evidence away from the quantified effect, and does when NB is off."""
    text = "We retrained the model weekly. Refunds fell by a third. The ops team trusted the model more. I learned a lot."
    clauses, sections = _clauses_and_sections(text, "Refunds fell")
    texts = [text[a:b] for a, b in clauses]
    quantified, trusted = texts.index("Refunds fell by a third."), texts.index("The ops team trusted the model more.")
    logits = np.full((len(clauses), 4), -4.0)
    logits[quantified, 1:3] = [1.0, 3.0]  # B and NB on the quantified effect
    logits[trusted, 1] = 3.0  # a surer B in the next sentence, with no number
    q = quality_from_clauses(text, clauses, logits, sections, NAMES)
    assert q["evidence"]["NB"]["holds"] and q["evidence"]["NB"]["text"] == "Refunds fell by a third"
    assert q["evidence"]["B"]["text"] == "Refunds fell by a third" and q["facts"]["B"] > 0.9  # B's probability is its best clause's
    logits[quantified, 2] = -4.0  # NB off: B's evidence is its own best clause again
    assert quality_from_clauses(text, clauses, logits, sections, NAMES)["evidence"]["B"]["text"] == "The ops team trusted the model more"


@pytest.mark.parametrize(("span", "words"), [
    ("and customer complaints fell noticeably.", "customer complaints fell noticeably"),
    ("In the end, the small model kept 92% of its accuracy,", "the small model kept 92% of its accuracy"),
    ("so the result was that churn fell 20%", "churn fell 20%"),
    ("since uh user engagement went up", "user engagement went up"),
    ("assets under review grew 10%", "assets under review grew 10%"),  # "as" only as a whole word
    ("and so.", "and so"),  # nothing but lead-in words: kept, less its full stop
])
def test_evidence_is_trimmed_to_the_words_that_make_the_fact(span, words):
    text = f"We shipped it. {span} Then we moved on."
    start = text.index(span)
    a, b = trim_evidence(text, start, start + len(span))
    assert text[a:b] == words


def test_nb_needs_b_and_v_never_moves_the_score():
    clauses, sections = _clauses_and_sections(ANSWER, "Recall rose")
    logits = np.full((4, 4), -4.0)
    logits[1, 2] = 3.0  # NB without B: not quantified B, so not NB
    logits[3, 3] = 3.0  # V
    q = quality_from_clauses(ANSWER, clauses, logits, sections, NAMES)
    assert not q["evidence"]["NB"]["holds"] and q["evidence"]["V"]["holds"]
    assert q["score"] == 1


def test_collator_flattens_windows_and_maps_them_to_answers(tokenizer, records):
    examples = [build_example(tokenizer, r, 32, 8) for r in records[:3]]
    batch = WindowCollator(tokenizer.pad_token_id)(examples)
    n_windows = sum(len(e["window_input_ids"]) for e in examples)
    assert batch["input_ids"].shape[0] == n_windows > 3
    assert batch["answer_index"].tolist() == [i for i, e in enumerate(examples) for _ in e["window_input_ids"]]
    special = (batch["input_ids"] == tokenizer.cls_token_id) | (batch["input_ids"] == tokenizer.sep_token_id)
    assert (batch["token_pos"][special] == -1).all() and (batch["token_pos"][batch["attention_mask"] == 0] == -1).all()
    n_tokens = [len(e["token_labels"]) for e in examples]
    assert [(batch["token_unit"][i] >= 0).sum().item() for i in range(3)] == n_tokens
    assert (batch["labels"][batch["token_unit"] < 0] == IGNORE_INDEX).all()
    assert batch["unit_labels"].shape[:2] == batch["unit_features"].shape[:2]
    assert batch["facts"].tolist() == [[float(r["result_facts"][f]) for f in NAMES] for r in records[:3]]
    assert batch["clause_facts"].shape[:2] == batch["clause_features"].shape[:2] == batch["clause_result"].shape
    assert LABEL2ID["RESULT"] in batch["labels"].unique().tolist()


def test_units_are_sentences_and_chunks_of_long_ones():
    text = 'AUC fell from 0.91 to 0.84. She said "fine." Then we shipped!\nso ' + " ".join(["word"] * 30)
    units = [text[a:b] for a, b in text_units(text)]
    assert units[:3] == ["AUC fell from 0.91 to 0.84.", 'She said "fine."', "Then we shipped!"]
    chunks = [len(u.split()) for u in units[3:]]
    assert sum(chunks) == 31 and len(chunks) == 3 and max(chunks) - min(chunks) <= 1


def test_unit_labels_are_the_majority_label_of_each_unit(tokenizer, records):
    rec = records[0]
    ex = build_example(tokenizer, rec, 64, 16)
    units = text_units(rec["answer"])
    chars = char_labels(rec["answer"], rec["segments"])
    assert len(ex["unit_labels"]) == len(units) == len(ex["unit_features"])
    for (a, b), lab in zip(units, ex["unit_labels"]):
        piece = chars[a:b][chars[a:b] >= 0]
        assert (piece == lab).mean() >= 0.5
    # every content token sits in the unit whose characters hold it
    enc = encode(tokenizer, rec["answer"], 64, 16)
    for (start, _), u in zip(enc.offsets, ex["token_unit"]):
        assert units[u][0] <= start < units[u][1]


def test_clauses_split_at_punctuation_and_connectives_and_flag_numbers_in_any_form():
    text = ("Complaints came down about sixty percent, and sales in the pilot stores rose 12%. "
            "so um it cut documentation time by roughly fifteen minutes per visit which people liked")
    clauses = [text[a:b] for a, b in clause_spans(text)]
    assert clauses == ["Complaints came down about sixty percent,", "and sales in the pilot stores rose 12%.",
                       "so um it cut documentation time by roughly fifteen minutes per visit", "which people liked"]
    flags = dict(zip(NUMBER_FLAGS, zip(*clause_features(text, clause_spans(text)))))
    assert flags["number_word"][:3] == (1.0, 0.0, 1.0) and flags["digits"][:2] == (0.0, 1.0)
    assert flags["percent"][:2] == (1.0, 1.0) and flags["time_count"][2] == 1.0
    assert all(v == 0.0 for v in [f[3] for f in flags.values()])  # "which people liked": no number at all
    for words in ("the backlog halved", "it doubled sign-ups", "a 3x speed-up", "we saved $40K"):
        assert sum(clause_features(words, [(0, len(words))])[0][:-1]) >= 1, words


def test_clause_targets_follow_the_evidence(tokenizer):
    from star_scorer.data import segment_spans

    rec = {"id": "x", "answer": ANSWER, "segments": [{"text": "We retrained the model weekly.", "label": "ACTION"},
                                                     {"text": ANSWER[len("We retrained the model weekly. "):], "label": "RESULT"}],
           "result_facts": {"T": True, "B": True, "NB": True, "V": False}, "result_quality": 4,
           "result_evidence": {"T": ["Recall rose to 0.86"], "B": ["cut the review queue by 40%"], "NB": ["cut the review queue by 40%"]}}
    assert [s.label for s in segment_spans(rec["segments"])] == ["ACTION", "RESULT"]
    ex = build_example(tokenizer, rec, 64, 16)
    assert ex["clause_result"] == [0, 1, 1, 1]
    assert ex["clause_facts"] == [[-1.0] * 4, [1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0]]
    no_evidence = build_example(tokenizer, {k: v for k, v in rec.items() if k != "result_evidence"}, 64, 16)
    assert no_evidence["clause_facts"][1] == [-1.0, -1.0, -1.0, 0.0]  # facts that hold: unknown per clause; V: absent everywhere
