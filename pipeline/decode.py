"""Model outputs -> the scorer's answer: word-level sections, the 0-4 score."""

from __future__ import annotations

import re

import numpy as np

from pipeline.labels import rubric_score

_WORD = re.compile(r"\S+")


def word_scores(text: str, offsets: list[tuple[int, int]], token_logprobs: np.ndarray) -> tuple[list[tuple[int, int]], np.ndarray]:
    """Whitespace-delimited words and the mean log-prob of the tokens inside each."""
    words = [(m.start(), m.end()) for m in _WORD.finditer(text)]
    n_labels = token_logprobs.shape[-1]
    scores = np.zeros((len(words), n_labels))
    counts = np.zeros(len(words))
    w = 0
    for t, (start, end) in enumerate(offsets):
        if end <= start:
            continue
        while w < len(words) and words[w][1] <= start:
            w += 1
        if w == len(words):
            break
        scores[w] += token_logprobs[t]
        counts[w] += 1
    has = counts > 0
    scores[has] /= counts[has][:, None]
    # a word the tokenizer dropped (rare symbols) stays uniform: Viterbi gives it its neighbours' label
    return words, scores


_SENTENCE_END = re.compile(r"[.!?][\"')\]]*$")
_CLAUSE_END = re.compile(r"[,;:\u2014-][\"')\]]*$")


CONNECTIVES = frozenset({"and", "so"})  # how unpunctuated speech opens a new section ("and i was asked", "so we")
RUN_ON = 10  # words since the last sentence end after which a stretch counts as unpunctuated


def switch_penalties(
    text: str, words: list[tuple[int, int]], inside: float, clause: float, sentence: float, connective: float | None = None
) -> np.ndarray:
    """Cost of a section change before each word after the first: cheap after a sentence end,
    dearer after a comma or dash, dearest mid-clause (gold labels follow sentences and clauses).

    ``connective`` (None: off): in a stretch with no sentence end for over ``RUN_ON`` words, as
    in transcripts, a change before "and" or "so" costs this instead of ``inside``.
    """
    out = np.full(max(len(words) - 1, 0), inside, dtype=float)
    last_end = 0
    for i in range(1, len(words)):
        prev = text[words[i - 1][0] : words[i - 1][1]]
        if _SENTENCE_END.search(prev):
            out[i - 1] = sentence
            last_end = i
        elif _CLAUSE_END.search(prev):
            out[i - 1] = clause
        elif connective is not None and i - last_end > RUN_ON and text[words[i][0] : words[i][1]].lower() in CONNECTIVES:
            out[i - 1] = min(connective, inside)
    return out


def viterbi(scores: np.ndarray, switch_penalty: float | np.ndarray) -> np.ndarray:
    """Best label per word under sum(log-prob) - penalty * (label changes).

    ``switch_penalty`` is one cost for every boundary or an array with the cost of
    changing label before word i+1 (length n-1).
    """
    n, k = scores.shape
    if n == 0:
        return np.zeros(0, dtype=int)
    penalties = np.broadcast_to(np.asarray(switch_penalty, dtype=float), (max(n - 1, 0),))
    back = np.zeros((n, k), dtype=int)
    best = scores[0].copy()
    stay = np.eye(k, dtype=bool)
    for i in range(1, n):
        cand = best[:, None] - penalties[i - 1] * (~stay)  # from row -> to col
        back[i] = cand.argmax(0)
        best = cand.max(0) + scores[i]
    path = np.zeros(n, dtype=int)
    path[-1] = int(best.argmax())
    for i in range(n - 1, 0, -1):
        path[i - 1] = back[i, path[i]]
    return path


def spans_from_words(text: str, words: list[tuple[int, int]], word_labels: list[str]) -> list[dict]:
    """Contiguous runs of one label -> spans covering every non-whitespace character, in order."""
    spans: list[dict] = []
    for (start, end), label in zip(words, word_labels):
        if spans and spans[-1]["label"] == label:
            spans[-1]["end"] = end
        else:
            spans.append({"label": label, "start": start, "end": end})
    for span in spans:
        span["text"] = text[span["start"] : span["end"]]
    return spans


SCORE_RULES = ("median", "argmax", "facts")


def quality_from_logits(
    cum_logits: np.ndarray, facts_logits: np.ndarray, fact_names: list[str], has_result: bool, rule: str = "median"
) -> dict:
    """The 0-4 score, its distribution and the rubric facts, consistent with the sections found.

    The rubric gives 0 exactly when there is no RESULT text, so the distribution is
    conditioned on whether the section head found one: without a RESULT the score is 0
    and every fact is false; with one, P(0) is removed and the rest renormalised.
    ``rule`` turns that into one score: the distribution's ``median`` (the ordinal
    head's natural point estimate), its ``argmax``, or ``facts``: the rubric applied
    to the fact probabilities (each fact holds when p >= 0.5).
    """
    greater = 1.0 / (1.0 + np.exp(-cum_logits))  # P(score > k), k = 0..3, decreasing
    greater = np.minimum.accumulate(greater)
    probs = np.concatenate([[1.0 - greater[0]], greater[:-1] - greater[1:], [greater[-1]]])
    probs = np.clip(probs, 0.0, None)
    facts = 1.0 / (1.0 + np.exp(-facts_logits))
    if not has_result:
        probs = np.eye(len(probs))[0]
        facts = np.zeros_like(facts)
    else:
        probs[0] = 0.0
        probs = probs / probs.sum() if probs.sum() > 0 else np.array([0.0, 1.0, 0.0, 0.0, 0.0])
    if rule == "median":
        score = min(int(np.searchsorted(np.cumsum(probs), 0.5)), len(probs) - 1)
    elif rule == "argmax":
        score = int(np.argmax(probs))
    elif rule == "facts":
        score = rubric_score(has_result, {name: bool(p >= 0.5) for name, p in zip(fact_names, facts)})
    else:
        raise ValueError(f"expected a score rule in {SCORE_RULES}, found {rule!r}")
    return {
        "score": score,
        "probabilities": [round(float(p), 4) for p in probs],
        "facts": {name: round(float(p), 4) for name, p in zip(fact_names, facts)},
    }
