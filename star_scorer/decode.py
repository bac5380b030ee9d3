"""Model outputs -> the scorer's answer: word-level sections, the 0-4 score."""

from __future__ import annotations

import re

import numpy as np

from star_scorer.labels import rubric_score
from star_scorer.text import CLAUSE_OPENERS, MIN_CLAUSE_WORDS, QUANTITY

_WORD = re.compile(r"\S+")


def word_scores(text: str, offsets: list[tuple[int, int]], token_logprobs: np.ndarray) -> tuple[list[tuple[int, int]], np.ndarray]:
    """Whitespace-delimited words and the mean log-prob of the tokens inside each."""
    words = [(m.start(), m.end()) for m in _WORD.finditer(text)]
    n_labels = token_logprobs.shape[-1]
    scores = np.zeros((len(words), n_labels))
    counts = np.zeros(len(words))
    spans = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
    kept = np.flatnonzero(spans[:, 1] > spans[:, 0])  # tokens with characters
    # a token belongs to the first word that ends after its start
    w = np.searchsorted(np.array([end for _, end in words], dtype=np.int64), spans[kept, 0], side="right")
    inside = w < len(words)
    np.add.at(scores, w[inside], token_logprobs[kept[inside]])
    np.add.at(counts, w[inside], 1)
    has = counts > 0
    scores[has] /= counts[has][:, None]
    # a word the tokenizer dropped (rare symbols) stays uniform: Viterbi gives it its neighbours' label
    return words, scores


_SENTENCE_END = re.compile(r"[.!?][\"')\]]*$")
_CLOSERS = "\"')]"


def _ends_with(word: str, marks: str) -> bool:
    """Whether ``word`` ends with one of ``marks``, closing quotes and brackets aside (``_SENTENCE_END`` without a regex)."""
    bare = word.rstrip(_CLOSERS)
    return bool(bare) and bare[-1] in marks


CONNECTIVES = frozenset({"and", "so"})  # how unpunctuated speech opens a new section ("and i was asked", "so we")
RUN_ON = 10  # words since the last sentence end after which a stretch counts as unpunctuated


def switch_penalties(
    text: str, words: list[tuple[int, int]], inside: float, clause: float, sentence: float, connective: float | None = None,
    opener: float | None = None,
) -> np.ndarray:
    """Cost of a section change before each word after the first: cheap after a sentence end,
    dearer after a comma or dash, dearest mid-clause (gold labels follow sentences and clauses).

    ``connective`` (None: off): in a stretch with no sentence end for over ``RUN_ON`` words, as
    in transcripts, a change before "and" or "so" costs this instead of ``inside``.
    ``opener`` (None: off): a change before a word that opens a clause ("and", "which", "so",
    "but", ... after at least ``MIN_CLAUSE_WORDS`` words of the current one), punctuated or not,
    costs this instead of ``inside``: "Our model had drifted and I had to retrain it" splits there.
    """
    out = np.full(max(len(words) - 1, 0), inside, dtype=float)
    last_end = last_boundary = 0
    for i in range(1, len(words)):
        prev = text[words[i - 1][0] : words[i - 1][1]]
        word = text[words[i][0] : words[i][1]].lower()
        if _ends_with(prev, ".!?"):
            out[i - 1] = sentence
            last_end = last_boundary = i
        elif _ends_with(prev, ",;:\u2014-"):
            out[i - 1] = clause
            last_boundary = i
        else:
            if connective is not None and i - last_end > RUN_ON and word in CONNECTIVES:
                out[i - 1] = min(connective, inside)
            if opener is not None and i - last_boundary >= MIN_CLAUSE_WORDS and word in CLAUSE_OPENERS:
                out[i - 1] = min(out[i - 1], opener)
                last_boundary = i
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
    if (penalties < 0).any():
        return _viterbi_dense(scores, penalties)
    # every change costs the same, so each label either stays or comes from the best label so far:
    # k comparisons a word instead of k x k (ties go to the lower label, as argmax's would)
    rows = scores.tolist()
    best = rows[0]
    back = [[0] * k]
    for i in range(1, n):
        top = max(best)
        a = best.index(top)
        alt = top - float(penalties[i - 1])
        row = rows[i]
        came = [c if b > alt or (b == alt and c <= a) else a for c, b in enumerate(best)]
        best = [(best[c] if came[c] == c else alt) + row[c] for c in range(k)]
        back.append(came)
    path = np.zeros(n, dtype=int)
    path[-1] = best.index(max(best))
    for i in range(n - 1, 0, -1):
        path[i - 1] = back[i][path[i]]
    return path


def _viterbi_dense(scores: np.ndarray, penalties: np.ndarray) -> np.ndarray:
    """``viterbi`` over every (from, to) pair: any penalty, negative ones included."""
    n, k = scores.shape
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


def reach_result(path: np.ndarray, result_probs: np.ndarray, words: list[tuple[int, int]], clauses: list[tuple[int, int]],
                 result: int, reach: float) -> np.ndarray:
    """``path`` where it has no ``result`` at all: with the words of every clause whose mean ``result_probs`` is at
    least ``reach`` labelled ``result``. Viterbi reads an answer's likeliest labels as a whole, and an outcome told in
    an action's words can lose to ACTION there though its own words lean to RESULT: the answer would then score 0
    however good its outcome (v22 read two of realworld's 22 score-4 answers so). Only answers with no Result are
    touched: reaching in every answer lowered section F1 on every set (docs/experiments.md session 19)."""
    if not len(path) or not clauses or (path == result).any():
        return path
    # a word is in the first clause ending after its start
    clause_of = np.searchsorted(np.array([b for _, b in clauses]), np.array([a for a, _ in words]), side="right")
    kept = np.flatnonzero(clause_of < len(clauses))
    counts = np.bincount(clause_of[kept], minlength=len(clauses))
    mean = np.bincount(clause_of[kept], result_probs[kept], minlength=len(clauses)) / np.maximum(counts, 1)
    out = path.copy()
    out[kept[mean[clause_of[kept]] >= reach]] = result
    return out


def result_clauses(clauses: list[tuple[int, int]], sections: list[dict], n_chars: int) -> list[bool]:
    """Whether most of each clause's characters lie in a RESULT section."""
    is_result = np.zeros(n_chars, dtype=bool)
    for span in sections:
        if span["label"] == "RESULT":
            is_result[span["start"] : span["end"]] = True
    return [bool(b > a and is_result[a:b].mean() > 0.5) for a, b in clauses]


def score_distribution(p_t: float, p_b: float, p_nb: float) -> list[float]:
    """P(score = 0..4) when a Result is there, from the facts' probabilities (taken as independent;
    ``p_nb`` is P(B and quantified), so P(NB | B) = p_nb / p_b). V never moves the score."""
    q = min(p_nb / p_b, 1.0) if p_b > 0 else 0.0
    return [
        0.0,
        (1 - p_t) * (1 - p_b),
        p_t * (1 - p_b) + (1 - p_t) * p_b * (1 - q),
        (1 - p_t) * p_b * q + p_t * p_b * (1 - q),
        p_t * p_b * q,
    ]


def fact_clauses(text: str, clauses: list[tuple[int, int]], fact_names: list[str]) -> np.ndarray:
    """(clauses, facts): which clauses can make each fact true. NB only one that states a number
    (``text.QUANTITY``: LABELING.md's NB is a downstream effect with a specific number); every clause for the rest."""
    out = np.ones((len(clauses), len(fact_names)), dtype=bool)
    if "NB" in fact_names:
        out[:, fact_names.index("NB")] = [bool(QUANTITY.search(text[a:b])) for a, b in clauses]
    return out


def sentence_ids(text: str, clauses: list[tuple[int, int]]) -> np.ndarray:
    """Per clause, the number of its sentence (a clause that ends a sentence closes it)."""
    ends = [bool(_SENTENCE_END.search(text[a:b])) for a, b in clauses]
    return np.concatenate([[0], np.cumsum(ends)[:-1]]).astype(int) if clauses else np.zeros(0, dtype=int)


def sentence_best(values: np.ndarray, sentences: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """For each of ``rows``, the largest of ``values`` over the ``rows`` in its sentence."""
    return np.array([values[rows[sentences[rows] == sentences[r]]].max() for r in rows]) if len(rows) else values[rows]


def quality_from_clauses(
    text: str, clauses: list[tuple[int, int]], clause_logits: np.ndarray, sections: list[dict], fact_names: list[str],
    extend: float = 0.5,
) -> dict:
    """The 0-4 score, the rubric facts and each fact's evidence, from the clauses decoded as RESULT.

    A fact's probability is the best of the RESULT clauses' (LABELING.md: a fact holds when
    one clause of the Result makes it true); it holds at p >= 0.5, NB only with B, and only in
    a clause that states a number (``text.QUANTITY``) and whose sentence carries the B (LABELING.md: the downstream
    effect carries the number; a clause's NB probability is at most the best B of its sentence). The score
    is the rubric over the facts that hold: 0 exactly when no clause is RESULT. A fact's evidence is its best clause
    (for B, when NB holds, NB's clause: LABELING.md gives both the clause with the effect and its number), widened over
    neighbouring RESULT clauses of the same sentence whose probability is at least ``extend``, then trimmed to the
    clause's own words (``trim_evidence``). ``probabilities`` is the score's distribution under the facts' probabilities.
    """
    probs = 1.0 / (1.0 + np.exp(-np.asarray(clause_logits, dtype=float)[: len(clauses)]))
    decided = np.where(fact_clauses(text, clauses[: len(probs)], fact_names), probs, 0.0)  # ``probs`` still widens evidence
    in_result = result_clauses(clauses, sections, len(text))
    if not any(in_result):
        return {
            "score": 0,
            "probabilities": [1.0, 0.0, 0.0, 0.0, 0.0],
            "facts": {name: 0.0 for name in fact_names},
            "evidence": {name: None for name in fact_names},
        }
    rows = np.flatnonzero(in_result)
    if "NB" in fact_names and "B" in fact_names:
        nb, b = fact_names.index("NB"), fact_names.index("B")
        decided[rows, nb] = np.minimum(decided[rows, nb], sentence_best(probs[:, b], sentence_ids(text, clauses[: len(probs)]), rows))
    best = {name: rows[int(np.argmax(decided[rows, k]))] for k, name in enumerate(fact_names)}
    p = {name: float(decided[best[name], k]) for k, name in enumerate(fact_names)}
    holds = {name: p[name] >= 0.5 for name in fact_names}
    holds["NB"] = holds["NB"] and holds["B"]
    if holds["NB"]:  # LABELING.md: B's evidence and NB's are one clause, the downstream effect with its number
        best["B"] = best["NB"]
    evidence = {}
    for k, name in enumerate(fact_names):
        lo = hi = best[name]
        while lo > 0 and in_result[lo - 1] and probs[lo - 1, k] >= extend and _same_sentence(text, clauses[lo - 1], clauses[lo]):
            lo -= 1
        while hi + 1 < len(clauses) and in_result[hi + 1] and probs[hi + 1, k] >= extend and _same_sentence(text, clauses[hi], clauses[hi + 1]):
            hi += 1
        start, end = trim_evidence(text, clauses[lo][0], clauses[hi][1])
        evidence[name] = {"start": start, "end": end, "text": text[start:end], "probability": round(p[name], 4), "holds": holds[name]}
    distribution = score_distribution(p["T"], p["B"], min(p["NB"], p["B"]))
    return {
        "score": rubric_score(True, holds),
        "probabilities": [round(float(x), 4) for x in distribution],
        "facts": {name: round(p[name], 4) for name in fact_names},
        "evidence": evidence,
    }


# what opens a clause without being part of what it says: connectives, fillers, and the lead-ins of an outcome
_EVIDENCE_LEAD = re.compile(
    r"(?:(?:in the end|at the end of the day|as a result|by the end|after that|in short|long story short|"
    r"(?:so )?the (?:result|outcome) was(?: that)?|ultimately|finally|overall|eventually|afterwards|"
    + "|".join(sorted(CLAUSE_OPENERS)) + r"|since|as|also|plus|uh|um|like|well|basically|honestly|actually)\b[\s,:;\-\u2014\u2013]*)+",
    re.I,
)
_EVIDENCE_TAIL = re.compile(r"[\s,;:.!?\-\u2014\u2013]+$")


def trim_evidence(text: str, start: int, end: int) -> tuple[int, int]:
    """[start, end) without its leading connectives, fillers and outcome lead-ins ("and", "uh", "in the end,")
    and its trailing punctuation: the words that make the fact true (LABELING.md: the evidence is that clause).
    A span that is nothing but such words keeps them."""
    lead = _EVIDENCE_LEAD.match(text, start, end)
    if lead and any(c.isalnum() for c in text[lead.end() : end]):
        start = lead.end()
    tail = _EVIDENCE_TAIL.search(text, start, end)
    if tail and tail.start() > start:
        end = tail.start()
    return start, end


def _same_sentence(text: str, left: tuple[int, int], right: tuple[int, int]) -> bool:
    return not _SENTENCE_END.search(text[left[0] : left[1]])
