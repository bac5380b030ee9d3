"""Label-preserving transforms of labelled answers (training split only; seeded).

Each transform maps a record to a new record whose segments keep their labels,
so the character spans are rebuilt exactly from the transformed segments:

- ``transcript``: lowercase and strip punctuation, as a speech recogniser writes;
- ``fillers``: insert fillers and false starts ("um", "you know", "we, we");
- ``markers``: remove discourse markers ("The situation was", "As a result,");
- ``reorder``: move a movable section (a Result teaser to the front, or a piece
  of Situation after the first Action);
- ``drop``: drop every segment of one section; dropping the Result rescores it 0;
- ``vague``: replace the Result with a vague claim, which the rubric scores 1.

The same functions drive the robustness harness (star_scorer.research.robustness).
"""

from __future__ import annotations

import copy
import random
import re
from collections.abc import Callable

from star_scorer.data import evidence_texts
from star_scorer.labels import FACTS, rubric_score

FILLERS = ("um", "uh", "like", "you know", "I mean", "sort of", "basically", "kind of")
_PUNCT = re.compile(r"[^\w\s'%$.-]|(?<!\d)[.](?!\d)|-(?!\d)")
MARKERS = [
    r"the situation was(?: that)?",
    r"(?:so )?the context (?:was|is)(?: that)?",
    r"(?:so )?(?:my|our) (?:task|goal|job|responsibility) (?:was|is) to",
    r"(?:my|our) (?:task|goal|job|responsibility) (?:was|is)(?: that)?",
    r"i was tasked with",
    r"the actions? i took (?:was|were)(?: to)?",
    r"(?:and )?as a result,?",
    r"the (?:result|outcome) was(?: that)?",
    r"in the end,?",
    r"ultimately,?",
    r"(?:so )?basically,?",
    r"first(?:ly)?,",
    r"to begin with,?",
    r"(?:so|and) then,?",
    r"what i did was",
]
_MARKER = re.compile(r"^(?:" + "|".join(MARKERS) + r")\s+", re.IGNORECASE)


def _rebuild(record: dict, segments: list[dict], suffix: str, evidence_map: Callable[[str], str] | None = None, **changes) -> dict:
    """A new record from ``segments``; each keeps ``src``, the index of the original segment it came from.

    The record's evidence clauses follow the edit (through ``evidence_map`` when the edit
    rewrote the text); a clause no longer found inside a RESULT segment is dropped, and with
    it the fact's evidence when none is left (the fact then trains at answer level only).
    """
    segments = [{"text": " ".join(s["text"].split()), "label": s["label"], "src": s.get("src")} for s in segments]
    segments = [s for s in segments if s["text"]]
    out = copy.deepcopy(record)
    out.update(changes)
    out["id"] = f"{record['id']}#{suffix}"
    out["segments"] = segments
    out["answer"] = " ".join(s["text"] for s in segments)
    has_result = any(s["label"] == "RESULT" for s in segments)
    if not has_result:
        out["result_facts"] = {f: False for f in FACTS}
    out["result_quality"] = rubric_score(has_result, out["result_facts"])
    out.pop("unquantified", None)
    if "result_evidence" in out:
        out["result_evidence"] = kept_evidence(out, evidence_map)
        if not out["result_evidence"]:
            del out["result_evidence"]
    return out


def kept_evidence(record: dict, evidence_map: Callable[[str], str] | None = None) -> dict[str, list[str]]:
    """The record's evidence clauses (mapped) that still stand inside one of its RESULT segments, for facts that hold."""
    results = [s["text"] for s in record["segments"] if s["label"] == "RESULT"]
    kept: dict[str, list[str]] = {}
    for fact, texts in evidence_texts(record).items():
        if not record["result_facts"].get(fact):
            continue
        for text in texts:
            text = " ".join((evidence_map(text) if evidence_map else text).split())
            if text and any(text in r for r in results):
                kept.setdefault(fact, []).append(text)
    return kept


def _indexed(record: dict) -> list[dict]:
    return [{"text": s["text"], "label": s["label"], "src": i} for i, s in enumerate(record["segments"])]


def as_transcript(text: str) -> str:
    """Lowercase, punctuation stripped (decimals, %, $ and apostrophes kept), as a speech recogniser writes."""
    text = _PUNCT.sub(" ", text.lower())
    return " ".join(re.sub(r"(?<=\w)\.(?=\s|$)", "", text).split())


def transcript(record: dict, rng: random.Random) -> dict:
    segs = [{"text": as_transcript(s["text"]), "label": s["label"], "src": i} for i, s in enumerate(record["segments"])]
    if not any(x["text"] for x in segs):
        return _rebuild(record, _indexed(record), "transcript")
    return _rebuild(record, segs, "transcript", evidence_map=as_transcript, style="asr")


def fillers(record: dict, rng: random.Random) -> dict:
    segs = []
    for i, s in enumerate(record["segments"]):
        words = s["text"].split()
        n_insert = max(1, len(words) // 12)
        for _ in range(n_insert):
            pos = rng.randrange(0, len(words) + 1)
            if rng.random() < 0.3 and pos < len(words):  # false start: repeat a word
                words.insert(pos, words[pos].rstrip(".,;:!?") + ",")
            else:
                words.insert(pos, rng.choice(FILLERS) + ",")
        segs.append({"text": " ".join(words), "label": s["label"], "src": i})
    if rng.random() < 0.5:
        segs.insert(0, {"text": rng.choice(["Um, okay.", "Yeah, so.", "Right, so, uh.", "Okay, let me think."]), "label": "OTHER"})
    return _rebuild(record, segs, "fillers", style="spoken" if record.get("style") == "written" else record.get("style"))


def strip_marker(text: str) -> str:
    stripped = _MARKER.sub("", text, count=1)
    if stripped == text or not stripped:
        return text
    return stripped[0].upper() + stripped[1:] if text[:1].isupper() else stripped


def markers(record: dict, rng: random.Random) -> dict:
    segs = [{"text": strip_marker(s["text"]), "label": s["label"], "src": i} for i, s in enumerate(record["segments"])]
    return _rebuild(record, segs, "markers")


def reorder(record: dict, rng: random.Random) -> dict:
    segs = _indexed(record)
    labels = [s["label"] for s in segs]
    options = []
    if "RESULT" in labels and labels[0] not in ("RESULT",):
        options.append("teaser")
    sit = [i for i, lab in enumerate(labels) if lab == "SITUATION"]
    if len(sit) > 1 and "ACTION" in labels:
        options.append("late_situation")
    if not options:
        return _rebuild(record, segs, "reorder")
    if rng.choice(options) == "teaser":
        i = labels.index("RESULT")
        segs.insert(0 if labels[0] != "OTHER" else 1, segs.pop(i))
    else:
        i = sit[-1]
        moved = segs.pop(i)
        first_action = [s["label"] for s in segs].index("ACTION")
        segs.insert(first_action + 1, moved)
    return _rebuild(record, segs, "reorder")


def drop(record: dict, rng: random.Random, label: str | None = None) -> dict:
    present = [lab for lab in ("SITUATION", "TASK", "ACTION", "RESULT") if any(s["label"] == lab for s in record["segments"])]
    if label is None:
        if len(present) < 2:
            return _rebuild(record, _indexed(record), "drop")
        label = rng.choice(present)
    segs = [s for s in _indexed(record) if s["label"] != label]
    if not segs:
        return _rebuild(record, _indexed(record), "drop")
    return _rebuild(record, segs, f"drop-{label.lower()}")


def drop_result(record: dict, rng: random.Random) -> dict:
    """The answer without its Result: it must score 0, and its last Action must stay an Action."""
    return drop(record, rng, "RESULT")


VAGUE_CLAIMS = (
    "In the end it was seen as a big success.",
    "Everyone was really happy with how it turned out.",
    "It went really well and the team appreciated it.",
    "Overall it improved things a lot.",
    "Looking back, it was a good experience and people liked it.",
)


def vague(record: dict, rng: random.Random) -> dict:
    """Replace the Result with one vague claim (facts: V only, so the rubric gives 1)."""
    segs = _indexed(record)
    first = next((i for i, s in enumerate(segs) if s["label"] == "RESULT"), None)
    if first is None:
        return _rebuild(record, segs, "vague")
    kept = [s for s in segs[:first] if s["label"] != "RESULT"]
    claim = {"text": rng.choice(VAGUE_CLAIMS), "label": "RESULT", "src": None}
    rest = [s for s in segs[first:] if s["label"] != "RESULT"]
    out = _rebuild(record, [*kept, claim, *rest], "vague")
    out["result_facts"] = {"T": False, "B": False, "NB": False, "V": True}
    out["result_quality"] = rubric_score(True, out["result_facts"])
    out["result_evidence"] = {"V": [claim["text"]]}
    return out


TRANSFORMS: dict[str, Callable[[dict, random.Random], dict]] = {
    "transcript": transcript,
    "fillers": fillers,
    "markers": markers,
    "reorder": reorder,
    "drop": drop,
    "drop_result": drop_result,
    "vague": vague,
}


def augment_records(records: list[dict], transforms: list[str], fraction: float, seed: int) -> list[dict]:
    """New records: for each transform, a seeded sample of ``fraction`` of ``records`` transformed."""
    unknown = [t for t in transforms if t not in TRANSFORMS]
    if unknown:
        raise ValueError(f"expected transforms from {sorted(TRANSFORMS)}, found {unknown}")
    out = []
    for t_index, name in enumerate(transforms):
        rng = random.Random(seed * 1000 + t_index)
        chosen = rng.sample(range(len(records)), k=int(round(fraction * len(records))))
        for i in sorted(chosen):
            new = TRANSFORMS[name](records[i], rng)
            if new["answer"] != records[i]["answer"]:
                new["segments"] = [{"text": s["text"], "label": s["label"]} for s in new["segments"]]
                out.append(new)
    return out
