"""Text only, no tensors: sentences, units and clauses of an answer, the flags for numbers in
any form, and gold labels per character. Shared by the model's features, the metrics and the
data tools, none of which should need torch to read a text.
"""

from __future__ import annotations

import re

import numpy as np

from star_scorer.data import segment_spans
from star_scorer.labels import LABEL2ID

# a sentence ends at . ! or ? (and closing quotes) before whitespace, at a line break, or at the end:
# "0.91" and "e.g.x" stay inside their sentence
_SENTENCE = re.compile(r"""(?s).+?(?:[.!?]+["')\]]*(?=\s)|(?=\n)|$)""")
_WORD = re.compile(r"\S+")


def char_labels(answer: str, segments: list[dict]) -> np.ndarray:
    """A label id per character; whitespace between segments is -1."""
    labels = np.full(len(answer), -1, dtype=np.int64)
    for span in segment_spans(segments):
        labels[span.start : span.end] = LABEL2ID[span.label]
    return labels


def text_units(text: str, max_words: int = 20, chunk_words: int = 12) -> list[tuple[int, int]]:
    """Sentence spans [start, end), words only; a sentence over ``max_words`` words (a long
    clause chain, or an unpunctuated transcript) is cut into near-equal chunks of about
    ``chunk_words`` words, so a section change inside it still falls near a unit edge."""
    units = []
    for m in _SENTENCE.finditer(text):
        words = [(w.start() + m.start(), w.end() + m.start()) for w in _WORD.finditer(m.group())]
        if not words:
            continue
        n_chunks = 1 if len(words) <= max_words else -(-len(words) // chunk_words)
        units += [(words[a][0], words[b - 1][1]) for a, b in _chunks(len(words), n_chunks)]
    return units


def _chunks(n: int, n_chunks: int) -> list[tuple[int, int]]:
    """``n`` items cut into ``n_chunks`` near-equal [a, b) ranges, none empty."""
    if n_chunks <= 1:
        return [(0, n)] if n else []
    bounds = np.linspace(0, n, n_chunks + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(bounds, bounds[1:]) if b > a]


def unit_features(units: list[tuple[int, int]], n_chars: int) -> list[list[float]]:
    """Per unit: where it starts and ends in the answer (0-1) and its length."""
    n = max(n_chars, 1)
    return [[a / n, b / n, min((b - a) / 400, 1.0)] for a, b in units]


N_UNIT_FEATURES = 3

# a clause ends after a word closing with , ; : or a dash, or before a connective that opens a new one
_CLAUSE_END_WORD = re.compile(r"[,;:\u2014\u2013][\"')\]]*$|^[-\u2014\u2013]+$")
CLAUSE_OPENERS = frozenset({"and", "so", "which", "but", "while", "meaning", "because", "whereas", "although", "though", "where", "then"})
MIN_CLAUSE_WORDS = 3


def clause_spans(text: str, max_words: int = 16) -> list[tuple[int, int]]:
    """Clause spans [start, end), words only, covering every word in order.

    Inside each sentence a clause ends after a word closing with a comma,
    semicolon, colon or dash, and before a connective ("and", "which", "so", ...)
    once the clause has ``MIN_CLAUSE_WORDS`` words; a piece shorter than that joins
    the one before it (or after it, at a sentence start). A clause over ``max_words``
    (unpunctuated speech) is cut into near-equal chunks.
    """
    spans: list[tuple[int, int]] = []
    for m in _SENTENCE.finditer(text):
        words = [(w.start() + m.start(), w.end() + m.start()) for w in _WORD.finditer(m.group())]
        pieces: list[list[tuple[int, int]]] = []
        current: list[tuple[int, int]] = []
        for i, (a, b) in enumerate(words):
            word = text[a:b]
            if current and len(current) >= MIN_CLAUSE_WORDS and word.lower() in CLAUSE_OPENERS:
                pieces.append(current)
                current = []
            current.append((a, b))
            if _CLAUSE_END_WORD.search(word) and i < len(words) - 1:
                pieces.append(current)
                current = []
        if current:
            pieces.append(current)
        merged: list[list[tuple[int, int]]] = []
        for piece in pieces:
            if merged and len(piece) < MIN_CLAUSE_WORDS:
                merged[-1] += piece
            elif merged and len(merged[-1]) < MIN_CLAUSE_WORDS:
                merged[-1] += piece
            else:
                merged.append(piece)
        for piece in merged:
            spans += [(piece[a][0], piece[b - 1][1]) for a, b in _chunks(len(piece), -(-len(piece) // max_words))]
    return spans


_CARDINAL = (  # a number in words
    r"zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|"
    r"eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundred|thousand|million|billion|dozen"
)
_NUMBER_WORD = _CARDINAL + r"|hundreds|thousands|millions|dozens|couple"  # and the loose quantity words built on them
_MONEY = r"[$\u20ac\u00a3]|\b(?:dollars?|euros?|pounds|bucks|\d+k)\b"
NUMBER_FLAGS = {
    # what kind of number a clause holds, in any form (LABELING.md: digits, words, fractions, multiples)
    "digits": re.compile(r"\d"),
    "number_word": re.compile(rf"\b(?:{_NUMBER_WORD})\b", re.I),
    "percent": re.compile(r"%|\bper ?cent\b|\bpercentage points?\b|\bpoints?\b", re.I),
    "fraction_multiple": re.compile(
        r"\b(?:half|halved|halving|third|thirds|quarter|quarters|fifth|tenth|twice|double|doubled|doubling|triple|tripled|"
        r"quadrupled|\d+(?:\.\d+)?x|\w+fold|times (?:more|less|faster|fewer|as))\b", re.I),
    "money": re.compile(_MONEY, re.I),
    "time_count": re.compile(
        rf"\b(?:\d+(?:\.\d+)?|{_NUMBER_WORD}|a|an|few|several)\s+(?:more\s+|fewer\s+|extra\s+)?(?:seconds?|minutes?|hours?|days?|weeks?|"
        rf"months?|quarters?|years?|sprints?|shifts?)\b|\b(?:no|zero|none)\b.*\b(?:since|after|in the next|all (?:year|quarter|month))\b", re.I),
}
N_CLAUSE_FEATURES = len(NUMBER_FLAGS) + 1

# a specific number, as NB needs one (LABELING.md: digits, words, fractions or multiples, zero over a stated period;
# "a couple of", "several", "hundreds of" and "noticeably" are loose quantity words, not numbers)
QUANTITY = re.compile(
    rf"\d|\b(?:{_CARDINAL})\b|"
    r"%|\bper ?cent\b|\bpercentage points?\b|"
    r"\b(?:half|halved|halving|third|thirds|quarter|quarters|fifth|fifths|tenth|tenths|twice|double|doubled|doubling|triple|"
    r"tripled|quadrupled|\w+fold)\b|"
    r"\b(?:a|an)\s+(?:extra\s+)?(?:second|minute|hour|day|week|month|quarter|year|sprint|shift)\b|"
    rf"{_MONEY}|"
    r"\b(?:no|zero|none|not (?:a|one))\b.*\b(?:since|after|in the next|all (?:year|quarter|month))\b",
    re.I,
)


def clause_features(text: str, clauses: list[tuple[int, int]]) -> list[list[float]]:
    """Per clause: a flag for each kind of number in it, and its length."""
    out = []
    for a, b in clauses:
        piece = text[a:b]
        out.append([float(bool(rx.search(piece))) for rx in NUMBER_FLAGS.values()] + [min(len(piece.split()) / 20, 1.0)])
    return out
