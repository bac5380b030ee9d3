"""Feedback an evaluator can hand to a candidate: short lines from the rubric, each about a span.

Every line comes from the sections found and the Result's facts with their evidence
(LABELING.md), never from free text generation, so an evaluator can check each one
against the answer. A line is ``{"code", "text", "span"}``; ``span`` is the part of the
answer it is about (``start``, ``end``, ``text``), or None when it is about something
missing. Lines come in a fixed order: what is missing first, then the Result.
"""

from __future__ import annotations

MAX_QUOTE = 90  # characters of a span quoted in a line


def _span(start: int, end: int, text: str) -> dict:
    return {"start": start, "end": end, "text": text[start:end]}


def _quote(span: dict) -> str:
    text = " ".join(span["text"].split())
    return text if len(text) <= MAX_QUOTE else text[: MAX_QUOTE - 3].rstrip() + "..."


MINE = frozenset({"i", "i'd", "i've", "i'm", "i'll", "me", "my", "myself", "mine"})
OURS = frozenset({"we", "we'd", "we've", "we're", "we'll", "us", "our", "ours", "ourselves"})


def ownership(text: str, sections: list[dict]) -> dict:
    """How the Action is told: first-person singular ("I", "my") against plural ("we", "our") words in the ACTION spans.

    ``share_i`` is I / (I + we), None when the Action uses neither (or there is no Action).
    """
    words = [w.strip(".,;:!?\"'()[]").lower().replace("\u2019", "'") for s in sections if s["label"] == "ACTION"
             for w in text[s["start"]:s["end"]].split()]
    mine = sum(w in MINE for w in words)
    ours = sum(w in OURS for w in words)
    return {"i": mine, "we": ours, "share_i": round(mine / (mine + ours), 4) if mine + ours else None}


def _we_throughout(text: str, sections: list[dict], told: dict) -> dict | None:
    """The Action span when it says "we" at least twice and never "I" (``told``: its ``ownership``); else None."""
    actions = [s for s in sections if s["label"] == "ACTION"]
    return _span(actions[0]["start"], actions[-1]["end"], text) if told["we"] >= 2 and told["i"] == 0 else None


def feedback_lines(text: str, sections: list[dict], quality: dict, story: dict | None = None, told: dict | None = None) -> list[dict]:
    """The rubric's feedback for one scored answer (``sections``, ``result_quality``, ``story`` and ``ownership`` of a
    scorer row; ``told`` is computed when not given)."""
    found = {s["label"] for s in sections}
    lines: list[dict] = []

    def add(code: str, message: str, span: dict | None = None) -> None:
        lines.append({"code": code, "text": message, "span": span})

    if "TASK" not in found:
        add("no_task", "No Task stated: say what you were asked to do, what you owned or what the goal was.")
    if "ACTION" not in found:
        add("no_action", "No Action found: say what you did yourself, step by step.")
    we_only = _we_throughout(text, sections, told or ownership(text, sections))
    if we_only is not None:
        add("we_throughout", 'The Action says "we" throughout: say what you did yourself.', we_only)
    steps = (story or {}).get("failure_steps") or {}
    if story and story.get("story_type") == "failure" and steps.get("mitigation", {}).get("present") \
            and not steps.get("prevention", {}).get("present"):
        fix = steps["mitigation"]["spans"][-1]
        add("no_prevention", "You describe the fix but no prevention step: say what you put in place so it cannot happen "
            "again (an alert, a test, a check, a process change).", _span(fix["start"], fix["end"], text))
    if "RESULT" not in found:
        add("no_result", "No Result: end with what happened because of what you did, and a number for it.")
        return lines
    evidence = quality.get("evidence") or {}
    holds = {fact: bool(ev and ev.get("holds")) for fact, ev in evidence.items()}

    def span_of(fact: str) -> dict | None:
        ev = evidence.get(fact)
        return _span(ev["start"], ev["end"], text) if ev else None

    if holds.get("T") and not holds.get("B"):
        t = span_of("T")
        add("technical_only", f'"{_quote(t)}" is a technical outcome: say what it changed for users, customers or the '
            "business, with a number.", t)
    if holds.get("B") and not holds.get("NB"):
        b = span_of("B")
        add("effect_without_number", f'"{_quote(b)}": put a number on this effect (how much, how many, how long).', b)
    if holds.get("B") and not holds.get("T"):
        b = span_of("B")
        add("no_technical_outcome", f'"{_quote(b)}" has no technical outcome behind it: name what your work changed in the '
            "model or system (a metric, a latency, a shipped service) that led to it.", b)
    if not holds.get("T") and not holds.get("B"):
        result = next(s for s in sections if s["label"] == "RESULT")
        add("no_concrete_outcome", "The Result names no concrete outcome: say what was delivered or fixed and what it changed.",
            _span(result["start"], result["end"], text))
    if holds.get("V"):
        v = span_of("V")
        add("vague_claim", f'"{_quote(v)}" is a claim without evidence: back it with what changed, and by how much.', v)
    if holds.get("T") and holds.get("B") and holds.get("NB"):
        nb = span_of("NB")
        add("two_part_result", f'Strong Result: a technical outcome and its quantified effect ("{_quote(nb)}").', nb)
    return lines
