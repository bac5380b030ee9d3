"""Rewrites of a labelled answer whose labels follow from the rewrite, for training copies and for checks.

``unquantified`` is the number check of LABELING.md's NB fact: each clause that carries the
number of a downstream effect, replaced by the writer's rewrite without it, must leave B
and take NB away. The training copies (``star_scorer.datatools.counterfactual``), the
robustness check (``star_scorer.research.robustness``) and the choice of the score's
offsets (``star_scorer.jobs.calibrate``) all read it from here.
"""

from __future__ import annotations

import copy
import random

from star_scorer.labels import FACTS, rubric_score

NB_OFF_AT_LEAST = 0.90  # issue 13: removing the number of the effect clause turns NB off on at least this share


def evidence_of(record: dict) -> dict[str, list[str]]:
    raw = record.get("result_evidence") or {}
    return {f: ([t] if isinstance(t, str) else list(t)) for f, t in raw.items() if t}


def with_segments(record: dict, segments: list[dict], kind: str, evidence: dict[str, list[str]] | None = None,
                  facts: dict[str, bool] | None = None) -> dict:
    """A copy of ``record`` with new segments.

    Without ``facts``, the facts are recomputed from the evidence still inside a RESULT
    segment (for copies that cut text: the record's evidence must be complete); with
    ``facts``, those are the copy's facts, and its evidence is what of ``evidence`` stands.
    """
    recompute = facts is None
    out = copy.deepcopy({k: v for k, v in record.items() if k not in ("unquantified", "result_evidence")})
    out["id"] = f"{record['id']}~{kind}"
    out["derived"] = kind
    out["segments"] = [{"text": s["text"], "label": s["label"]} for s in segments]
    out["answer"] = " ".join(s["text"] for s in segments)
    results = [s["text"] for s in segments if s["label"] == "RESULT"]
    evidence = evidence_of(record) if evidence is None else evidence
    kept = {f: [t for t in texts if any(t in r for r in results)] for f, texts in evidence.items()}
    kept = {f: texts for f, texts in kept.items() if texts}
    facts = dict(record["result_facts"]) if facts is None else dict(facts)
    if recompute:
        facts = {f: bool(facts[f] and (f in kept)) for f in FACTS}
        facts["NB"] = facts["NB"] and facts["B"]
    if not results:
        facts = {f: False for f in FACTS}
    kept = {f: t for f, t in kept.items() if facts[f]}
    out["result_facts"] = facts
    out["result_quality"] = rubric_score(bool(results), facts)
    if kept:
        out["result_evidence"] = kept
    steps = record.get("failure_steps")
    if steps is not None and not all(any(t in s["text"] for s in segments) for texts in steps.values() for t in texts):
        del out["failure_steps"]  # a step's text was cut or rewritten: the copy is not annotated for steps
    return out


def unquantified(record: dict, rng: random.Random | None = None) -> dict | None:
    """Each NB clause replaced by its rewrite without a number: B stays, NB goes."""
    rewrites = record.get("unquantified") or {}
    evidence = evidence_of(record)
    if not record["result_facts"]["NB"] or not rewrites or any(c not in rewrites for c in evidence.get("NB", [])):
        return None
    segments = []
    for s in record["segments"]:
        text = s["text"]
        if s["label"] == "RESULT":
            for old, new in rewrites.items():
                text = text.replace(old, new)
        segments.append({"text": text, "label": s["label"]})
    moved = {f: [rewrites.get(t, t) for t in texts] for f, texts in evidence.items() if f != "NB"}
    facts = dict(record["result_facts"], NB=False)
    out = with_segments(record, segments, "unquantified", evidence=moved, facts=facts)
    return out if out["result_facts"]["B"] == record["result_facts"]["B"] else None
