"""Counterfactual and reshaped copies of training answers, derived by ``make data`` from the evidence.

Our writers' answers taught the model habits that real answers do not share: long
Results for high scores, long answers, numbers written as digits. Each copy changes
one thing and says what that does to the labels, so the model can only learn the
rubric (LABELING.md: the score depends on what the Result says, never on its length):

- ``short``: three to five sentences, one per section (the Result's sentences with
  evidence): the short answers a new user types;
- ``trim``: the Result cut to the sentences that carry its evidence: same score, shorter;
- ``pad``: one to three neutral sentences (lessons, reflections) added to the Result:
  same score, longer;
- ``unquantified``: every clause with a quantified downstream effect replaced by the
  writer's rewrite without its number: NB off;
- ``no_effect``: the sentences with a downstream effect dropped: B and NB off;
- ``number_words``: digits spelled out ("40%" -> "forty percent").

Facts are recomputed from the evidence that is left (the writers list every clause
that makes a fact true), so a copy's score is the rubric's, never a guess. Standard
library only, like star_scorer.datatools.corpus.
"""

from __future__ import annotations

import hashlib
import random
import re
from pathlib import Path

from star_scorer.labels import FACTS
from star_scorer.paths import DATA_DIR
from star_scorer.rewrites import evidence_of, unquantified, with_segments

KINDS = ("short", "trim", "pad", "unquantified", "no_effect", "number_words")
# share of eligible training answers that get each copy, by the answer's score (seeded by the answer's id):
# our writers gave high scores long Results, so trimming favours high scores and padding low ones,
# until Result length no longer tells the score (make data-stats prints the rank correlation)
RATES = {
    "short": {q: 0.8 for q in range(5)},
    "trim": {2: 0.3, 3: 0.6, 4: 0.8},
    "pad": {1: 0.6, 2: 0.6, 3: 0.35, 4: 0.35},
    "unquantified": {3: 0.6, 4: 0.6},
    "no_effect": {q: 0.7 for q in range(2, 5)},
    "number_words": {q: 0.15 for q in range(5)},
}
# a short answer's Result gets neutral sentences too, more often the lower its score
SHORT_PAD = {1: 0.9, 2: 0.7, 3: 0.2, 4: 0.0}
# the number-removed, effect-dropped and numbers-in-words copies are made from the answer's short
# copy this often (when it has one), so that counterfactual pairs come short as well as long
FROM_SHORT = 0.6
NEUTRAL_TRAIN = DATA_DIR / "counterfactual" / "neutral_train.txt"

_SENTENCE = re.compile(r"(?s).+?(?:[.!?]+[\"')\]]*(?=\s)|$)")


def sentences(text: str) -> list[str]:
    return [m.group().strip() for m in _SENTENCE.finditer(text) if m.group().strip()]


def read_lines(path: Path) -> list[str]:
    return [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip() and not line.startswith("#")]


def _rng(record: dict, kind: str) -> random.Random:
    return random.Random(int(hashlib.sha256(f"{record['id']}~{kind}".encode()).hexdigest()[:12], 16))


def _complete_evidence(record: dict) -> bool:
    """Every fact that holds names its evidence (copies that cut text need it to recompute facts)."""
    evidence = evidence_of(record)
    return all(f in evidence for f in FACTS if record["result_facts"][f])


def _split_sentences(record: dict) -> list[dict]:
    return [{"text": s, "label": seg["label"]} for seg in record["segments"] for s in sentences(seg["text"])]


def _evidence_sentence(parts: list[dict], clause: str) -> int | None:
    return next((i for i, p in enumerate(parts) if p["label"] == "RESULT" and (clause in p["text"] or p["text"] in clause)), None)


def _lean_result(parts: list[dict], record: dict) -> list[int]:
    """The fewest Result sentences that keep its score: one sentence per fact among T, B, NB (the shortest of each fact's)."""
    keep: set[int] = set()
    for fact in ("NB", "B", "T"):
        if not record["result_facts"][fact]:
            continue
        found = [i for c in evidence_of(record).get(fact, []) if (i := _evidence_sentence(parts, c)) is not None]
        if found and not keep & set(found):
            keep.add(min(found, key=lambda i: len(parts[i]["text"])))
    if not keep:
        result = [i for i, p in enumerate(parts) if p["label"] == "RESULT"]
        clauses = [c for texts in evidence_of(record).values() for c in texts]
        with_evidence = [i for i in result if any(c in parts[i]["text"] or parts[i]["text"] in c for c in clauses)]
        keep = set((with_evidence or result)[:1])
    return sorted(keep)


def short(record: dict, rng: random.Random, neutral: list[str] | None = None) -> dict | None:
    """A three-to-five-sentence answer: the shortest of the first sentences of each section, the lean Result."""
    if not _complete_evidence(record):
        return None
    parts = _split_sentences(record)
    keep: list[int] = []
    for label, n in (("SITUATION", 1), ("TASK", 1), ("ACTION", rng.choice((1, 1, 2)))):
        first = [i for i, p in enumerate(parts) if p["label"] == label][:3]
        keep += sorted(first, key=lambda i: len(parts[i]["text"]))[:n]
    keep += _lean_result(parts, record)
    keep = sorted(set(keep))
    if not 3 <= len(keep) <= 5 or len(keep) == len(parts):
        return None
    out = _merged(record, [parts[i] for i in keep], "short")
    if rng.random() < SHORT_PAD.get(out["result_quality"], 0.0):
        padded = pad(dict(out, result_evidence=out.get("result_evidence", {})), rng, neutral)
        if padded is not None:
            return dict(padded, id=out["id"], derived="short")
    return out


def trim(record: dict, rng: random.Random) -> dict | None:
    """The Result cut to the fewest sentences that keep its score; the rest of the answer unchanged."""
    if not _complete_evidence(record) or not evidence_of(record):
        return None
    parts = _split_sentences(record)
    lean = set(_lean_result(parts, record))
    kept = [p for i, p in enumerate(parts) if p["label"] != "RESULT" or i in lean]
    if len(kept) == len(parts):
        return None
    out = _merged(record, kept, "trim")
    return out if out["result_quality"] == record["result_quality"] else None


def pad(record: dict, rng: random.Random, neutral: list[str] | None = None) -> dict | None:
    """One to three neutral sentences added after (or before) the Result: the same facts and score."""
    segments = record["segments"]
    result = [i for i, s in enumerate(segments) if s["label"] == "RESULT"]
    if not result:
        return None
    pool = neutral if neutral is not None else read_lines(NEUTRAL_TRAIN)
    added = " ".join(rng.sample(pool, k=rng.choice((1, 2, 2, 3))))
    if record.get("style") == "asr":
        added = " ".join(re.sub(r"[^\w\s'%$]", " ", added.lower()).split())
    new = [dict(s) for s in segments]
    at = result[-1] + 1 if rng.random() < 0.8 else result[0]
    new.insert(at, {"text": added, "label": "RESULT"})
    return with_segments(record, new, "pad", facts=record["result_facts"])


def no_effect(record: dict, rng: random.Random) -> dict | None:
    """The Result's sentences with a downstream effect dropped (not those that also hold the technical outcome)."""
    if not record["result_facts"]["B"] or not _complete_evidence(record):
        return None
    evidence = evidence_of(record)
    b_clauses = evidence["B"] + evidence.get("NB", [])
    t_clauses = evidence.get("T", [])
    parts = _split_sentences(record)
    kept = []
    for p in parts:
        hit = p["label"] == "RESULT" and any(c in p["text"] or p["text"] in c for c in b_clauses)
        if hit and any(c in p["text"] or p["text"] in c for c in t_clauses):
            return None
        if not hit:
            kept.append(p)
    if not any(p["label"] == "RESULT" for p in kept) or len(kept) == len(parts):
        return None
    out = _merged(record, kept, "no_effect")
    return out if not out["result_facts"]["B"] else None


_ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def number_to_words(n: int) -> str:
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else "-" + _ONES[n % 10])
    if n < 1000:
        rest = n % 100
        return _ONES[n // 100] + " hundred" + ("" if rest == 0 else " and " + number_to_words(rest))
    for size, name in ((10**9, "billion"), (10**6, "million"), (1000, "thousand")):
        if n >= size:
            rest = n % size
            return number_to_words(n // size) + f" {name}" + ("" if rest == 0 else (" and " if rest < 100 else " ") + number_to_words(rest))
    return str(n)


_MONEY = re.compile(r"\$(\d[\d,]*(?:\.\d+)?)\s?([kKmM](?![a-z])|million|thousand|billion)?")
_PERCENT = re.compile(r"\b(\d+)\s?%")
_TIMES = re.compile(r"\b(\d+)x\b")
_INT = re.compile(r"(?<![\d.,$])\b(\d{1,3}(?:,\d{3})*|\d+)\b(?![.,]\d)")
_SCALE = {"k": "thousand", "K": "thousand", "m": "million", "M": "million"}


def spell_numbers(text: str) -> str:
    """Whole numbers, percentages, multiples and dollar amounts in words; decimals and years stay as they are."""
    def money(m: re.Match) -> str:
        amount, scale = m.group(1).replace(",", ""), m.group(2)
        if "." in amount:
            whole, frac = amount.split(".")
            words = number_to_words(int(whole)) + " point " + " ".join(_ONES[int(d)] for d in frac)
        else:
            words = number_to_words(int(amount))
        return f"{words} {_SCALE.get(scale, scale) + ' ' if scale else ''}dollars"

    def integer(m: re.Match) -> str:
        value = int(m.group(1).replace(",", ""))
        return m.group(0) if 1900 <= value <= 2100 and "," not in m.group(1) else number_to_words(value)

    text = _MONEY.sub(money, text)
    text = _PERCENT.sub(lambda m: f"{number_to_words(int(m.group(1)))} percent", text)
    text = _TIMES.sub(lambda m: f"{number_to_words(int(m.group(1)))} times", text)
    return _INT.sub(integer, text)


def number_words(record: dict, rng: random.Random) -> dict | None:
    if not re.search(r"\d", record["answer"]):
        return None
    segments = [{"text": spell_numbers(s["text"]), "label": s["label"]} for s in record["segments"]]
    evidence = {f: [spell_numbers(t) for t in texts] for f, texts in evidence_of(record).items()}
    return with_segments(record, segments, "number_words", evidence=evidence, facts=record["result_facts"])


def _merged(record: dict, parts: list[dict], kind: str) -> dict:
    """Adjacent sentences of one label joined back into segments."""
    segments: list[dict] = []
    for p in parts:
        if segments and segments[-1]["label"] == p["label"]:
            segments[-1]["text"] += " " + p["text"]
        else:
            segments.append(dict(p))
    return with_segments(record, segments, kind)


BUILDERS = {"short": short, "trim": trim, "pad": pad, "unquantified": unquantified, "no_effect": no_effect, "number_words": number_words}


def derive(records: list[dict], rates: dict[str, dict[int, float]] | None = None) -> list[dict]:
    """The copies of ``records`` for every kind, each answer chosen with its kind's rate for its score (seeded by its id)."""
    rates = RATES if rates is None else rates
    neutral = read_lines(NEUTRAL_TRAIN)
    out = []
    for rec in records:
        brief = short(rec, _rng(rec, "short"), neutral)
        seen = {rec["answer"]}
        for kind in KINDS:
            rng = _rng(rec, kind)
            if rng.random() >= rates.get(kind, {}).get(rec["result_quality"], 0.0):
                continue
            if kind == "short":
                copy_ = brief
            elif kind in ("unquantified", "no_effect", "number_words") and brief is not None and rng.random() < FROM_SHORT:
                source = dict(brief, unquantified=rec.get("unquantified") or {})
                copy_ = BUILDERS[kind](source, rng)
                if copy_ is not None:
                    copy_ = dict(copy_, id=f"{rec['id']}~short-{kind}", derived=f"short-{kind}")
            else:
                copy_ = BUILDERS[kind](rec, rng, neutral) if kind == "pad" else BUILDERS[kind](rec, rng)
            if copy_ is not None and copy_["answer"] not in seen:
                seen.add(copy_["answer"])
                out.append(copy_)
    return out
