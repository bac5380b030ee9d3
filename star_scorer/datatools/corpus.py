"""Hand-written answer sources (``data/raw/**/*.txt``) -> JSONL records.

Answers are authored in a plain-text form that is easy to write and review, and
the JSONL the pipeline reads is derived from it by ``python -m star_scorer.datatools.corpus
build``; raw files are never edited by the build. One record looks like::

    ### id: a1-0001
    story: a1-0001
    question: Tell me about a time a model you owned failed in production.
    style: spoken
    domain: ml-engineering
    competency: production_failure
    story_type: failure
    facts: T B NB
    [OTHER] Yeah so, um, this one's a good one.
    [SITUATION] We had a fraud model that ...
    [RESULT] ...

``facts`` lists the rubric facts that hold (any of T B NB V), or ``none``. The
answer is the segment texts joined by single spaces and the 0-4 score is
computed from the facts by the rubric, so the two can never disagree.

After the segments, each fact that holds names its evidence, the clause of a
RESULT segment that makes it true (LABELING.md), one line per clause, the
clearest first; a clause that carries a quantified downstream effect also says
how it reads with its number taken out (the NB counterfactual)::

    evidence T: the new model's recall rose from 0.71 to 0.86
    evidence B: it cut the review queue by about 40%
    evidence NB: it cut the review queue by about 40%
    unquantified: it cut the review queue by about 40% => it cut the review queue noticeably

Evidence is optional per record; where a record has any, every fact that holds
must have some, and every NB clause its ``unquantified`` line.

Failure stories also name the steps of the domain's Action pattern they show
(data/briefs/steps-2026-12.md), after the evidence: a ``steps:`` line (the steps in
order, or ``none``) and, for each step named, the texts that show it, each an exact
part of one segment::

    steps: detection mitigation
    step detection: the drift alert fired on Monday and I checked the feature dashboards
    step mitigation: I rolled back to the previous model

This module uses the standard library only, so writers can check a file with
any Python: ``python3 -m star_scorer.datatools.corpus check data/raw/a1/*.txt``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import re
import sys
from collections.abc import Iterable
from pathlib import Path

from star_scorer.labels import COMPETENCIES, FACTS, FAILURE_STEPS, SECTION_LABELS, STORY_TYPES, STYLES, rubric_score
from star_scorer.paths import DATA_DIR, RAW_DATA_DIR

logger = logging.getLogger(__name__)

HEADER_FIELDS = ("story", "question", "style", "domain", "competency", "story_type", "facts")
# optional: "added: TASK" marks an answer whose TASK sentence was written in the 2026-12 relabel (data/README.md)
OPTIONAL_FIELDS = ("added",)
_SEGMENT = re.compile(r"^\[(?P<label>[A-Z]+)\]\s*(?P<text>.*)$")
_FIELD = re.compile(r"^(?P<key>[a-z_]+):\s*(?P<value>.*)$")
_EVIDENCE = re.compile(r"^evidence (?P<fact>[A-Z]+):\s*(?P<text>.*)$")
_UNQUANTIFIED = re.compile(r"^unquantified:\s*(?P<old>.*?)\s*=>\s*(?P<new>.*)$")
_STEPS = re.compile(r"^steps:\s*(?P<names>.*)$")
_STEP = re.compile(r"^step (?P<step>[a-z]+):\s*(?P<text>.*)$")


class RawFormatError(ValueError):
    """A raw answer file breaks the authoring format; the message names file and line."""


def _fail(path: Path, line_no: int, problem: str) -> RawFormatError:
    return RawFormatError(f"{path}:{line_no}: {problem}")


def parse_raw_file(path: Path) -> list[dict]:
    """Parse one raw file into JSONL-schema records, failing on the first bad line."""
    records: list[dict] = []
    current: dict | None = None
    start_line = 0
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    for line_no, raw in enumerate(lines, start=1):
        line = raw.rstrip()
        if line.startswith("### id:"):
            if current is not None:
                records.append(_finish(path, start_line, current))
            current = {"id": line[len("### id:") :].strip(), "segments": [], "evidence": [], "unquantified": [], "steps": None,
                       "step_texts": []}
            start_line = line_no
            continue
        if not line.strip():
            continue
        if current is None:
            raise _fail(path, line_no, f"expected a '### id: ...' line to start a record, found {line[:40]!r}")
        evidence = _EVIDENCE.match(line)
        if evidence and current["segments"]:
            if evidence["fact"] not in FACTS:
                raise _fail(path, line_no, f"expected evidence for one of {list(FACTS)}, found 'evidence {evidence['fact']}'")
            current["evidence"].append((line_no, evidence["fact"], " ".join(evidence["text"].split())))
            continue
        steps = _STEPS.match(line)
        if steps and current["segments"]:
            names = steps["names"].split()
            names = [] if names == ["none"] else names
            if current["steps"] is not None or [n for n in names if n not in FAILURE_STEPS] or names != [n for n in FAILURE_STEPS if n in names]:
                raise _fail(path, line_no, f"expected one 'steps:' line naming steps from {list(FAILURE_STEPS)} in that order, or none; found {line[:60]!r}")
            current["steps"] = (line_no, names)
            continue
        step = _STEP.match(line)
        if step and current["segments"]:
            if step["step"] not in FAILURE_STEPS:
                raise _fail(path, line_no, f"expected 'step <name>:' with a name in {list(FAILURE_STEPS)}, found {step['step']!r}")
            current["step_texts"].append((line_no, step["step"], " ".join(step["text"].split())))
            continue
        unquantified = _UNQUANTIFIED.match(line)
        if unquantified and current["segments"]:
            current["unquantified"].append((line_no, " ".join(unquantified["old"].split()), " ".join(unquantified["new"].split())))
            continue
        if line.startswith(("evidence", "unquantified")) and current["segments"]:
            raise _fail(path, line_no, f"expected 'evidence <FACT>: <clause>' or 'unquantified: <clause> => <rewrite>', found {line[:40]!r}")
        seg = _SEGMENT.match(line)
        if seg:
            if current["evidence"] or current["unquantified"] or current["steps"] or current["step_texts"]:
                raise _fail(path, line_no, f"expected evidence lines after every [LABEL] segment of {current['id']!r}, found a segment after them")
            label = seg["label"]
            if label not in SECTION_LABELS:
                raise _fail(path, line_no, f"expected a label in {list(SECTION_LABELS)}, found [{label}]")
            text = " ".join(seg["text"].split())
            if not text:
                raise _fail(path, line_no, f"segment [{label}] has no text")
            current["segments"].append({"text": text, "label": label})
            continue
        field = _FIELD.match(line)
        if field and not current["segments"] and field["key"] in HEADER_FIELDS + OPTIONAL_FIELDS:
            current[field["key"]] = field["value"].strip()
            continue
        if current["segments"] and not (current["evidence"] or current["unquantified"] or current["steps"] or current["step_texts"]):
            # A wrapped line continues the previous segment.
            current["segments"][-1]["text"] += " " + " ".join(line.split())
            continue
        raise _fail(path, line_no, f"expected a header field {list(HEADER_FIELDS)} or a [LABEL] segment, found {line[:40]!r}")
    if current is not None:
        records.append(_finish(path, start_line, current))
    return records


def _finish(path: Path, line_no: int, rec: dict) -> dict:
    missing = [f for f in HEADER_FIELDS if f not in rec]
    if missing:
        raise _fail(path, line_no, f"record {rec['id']!r} is missing header fields {missing}")
    if not rec["segments"]:
        raise _fail(path, line_no, f"record {rec['id']!r} has no [LABEL] segments")
    checks = (("style", STYLES), ("competency", COMPETENCIES), ("story_type", STORY_TYPES))
    for key, allowed in checks:
        if rec[key] not in allowed:
            raise _fail(path, line_no, f"record {rec['id']!r}: expected {key} in {list(allowed)}, found {rec[key]!r}")
    tokens = rec["facts"].split()
    if tokens == ["none"]:
        tokens = []
    unknown = [t for t in tokens if t not in FACTS]
    if unknown:
        raise _fail(path, line_no, f"record {rec['id']!r}: expected facts from {list(FACTS)} or 'none', found {unknown}")
    facts = {f: f in tokens for f in FACTS}
    has_result = any(s["label"] == "RESULT" for s in rec["segments"])
    if not has_result and any(facts.values()):
        raise _fail(path, line_no, f"record {rec['id']!r} has no [RESULT] segment, so its facts must be 'none', found {tokens}")
    if facts["NB"] and not facts["B"]:
        raise _fail(path, line_no, f"record {rec['id']!r}: NB (B is quantified) needs B, found {tokens}")
    evidence = _evidence(path, rec, facts)
    out = {
        "id": rec["id"],
        "story": rec["story"],
        "question": rec["question"],
        "answer": " ".join(s["text"] for s in rec["segments"]),
        "segments": rec["segments"],
        "result_quality": rubric_score(has_result, facts),
        "result_facts": facts,
        "style": rec["style"],
        "domain": rec["domain"],
        "competency": rec["competency"],
        "story_type": rec["story_type"],
    }
    if rec.get("added"):
        if rec["added"] != "TASK":
            raise _fail(path, line_no, f"record {rec['id']!r}: expected 'added: TASK' (a TASK written in the relabel), found {rec['added']!r}")
        out["added"] = "TASK"
    if evidence:
        out["result_evidence"], out["unquantified"] = evidence
    steps = _steps(path, line_no, rec)
    if steps is not None:
        out["failure_steps"] = steps
    return out


def _steps(path: Path, line_no: int, rec: dict) -> dict[str, list[str]] | None:
    """``{step: [texts]}`` for a record with a ``steps:`` line ({} for ``steps: none``), checked; None without one."""
    if rec["steps"] is None:
        if rec["step_texts"]:
            raise _fail(path, rec["step_texts"][0][0], f"record {rec['id']!r}: 'step' lines need a 'steps:' line naming them")
        return None
    names = rec["steps"][1]
    by_step: dict[str, list[str]] = {}
    for step_line, step, text in rec["step_texts"]:
        if step not in names:
            raise _fail(path, step_line, f"record {rec['id']!r}: 'step {step}:' but its 'steps:' line names {names or ['none']}")
        if not text or not any(text in s["text"] for s in rec["segments"]):
            raise _fail(path, step_line, f"record {rec['id']!r}: expected step {step} to be an exact part of one segment, found {text[:60]!r}")
        by_step.setdefault(step, []).append(text)
    lacking = [n for n in names if n not in by_step]
    if lacking:
        raise _fail(path, rec["steps"][0], f"record {rec['id']!r}: expected a 'step <name>:' line for every step named, none for {lacking}")
    return by_step


def _evidence(path: Path, rec: dict, facts: dict[str, bool]) -> tuple[dict, dict] | None:
    """``({fact: [clauses]}, {clause: rewrite})`` checked against the RESULT segments and the facts, or None."""
    if not rec["evidence"] and not rec["unquantified"]:
        return None
    results = [s["text"] for s in rec["segments"] if s["label"] == "RESULT"]
    by_fact: dict[str, list[str]] = {}
    for line_no, fact, text in rec["evidence"]:
        if not facts[fact]:
            raise _fail(path, line_no, f"record {rec['id']!r}: evidence for {fact}, but {fact} is not among its facts")
        if not text or not any(text in r for r in results):
            raise _fail(path, line_no, f"record {rec['id']!r}: expected evidence {fact} to be an exact part of one [RESULT] segment, found {text[:60]!r}")
        by_fact.setdefault(fact, []).append(text)
    lacking = [f for f in FACTS if facts[f] and f not in by_fact]
    if lacking:
        raise _fail(path, rec["evidence"][0][0] if rec["evidence"] else 0, f"record {rec['id']!r}: expected evidence for every fact that holds, none for {lacking}")
    rewrites: dict[str, str] = {}
    for line_no, old, new in rec["unquantified"]:
        if old not in by_fact.get("NB", []):
            raise _fail(path, line_no, f"record {rec['id']!r}: expected 'unquantified:' to rewrite an 'evidence NB:' clause, found {old[:60]!r}")
        if not new or new == old:
            raise _fail(path, line_no, f"record {rec['id']!r}: expected a rewrite of {old[:40]!r} without its number, found {new[:40]!r}")
        rewrites[old] = new
    missing = [c for c in by_fact.get("NB", []) if c not in rewrites]
    if missing:
        raise _fail(path, rec["evidence"][0][0], f"record {rec['id']!r}: expected an 'unquantified:' line for NB clause {missing[0][:60]!r}")
    return by_fact, rewrites


def parse_raw_files(paths: Iterable[Path]) -> list[dict]:
    records: list[dict] = []
    seen: dict[str, Path] = {}
    for path in sorted(Path(p) for p in paths):
        for rec in parse_raw_file(path):
            if rec["id"] in seen:
                raise RawFormatError(f"{path}: id {rec['id']!r} already used in {seen[rec['id']]}")
            seen[rec["id"]] = path
            records.append(rec)
    return records


def summary(records: list[dict]) -> str:
    """A short table of what a batch holds, for writers to check their quotas."""
    from collections import Counter

    n = len(records)
    words = [len(r["answer"].split()) for r in records]
    lines = [f"{n} answers, {sum(words)} words"]
    for key in ("style", "result_quality", "competency", "domain"):
        counts = Counter(r[key] for r in records)
        lines.append(f"{key}: " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items(), key=str)))
    lines.append(
        f"length: <80 words={sum(w < 80 for w in words)}, >400 words={sum(w > 400 for w in words)}, max={max(words, default=0)}"
    )
    star = sum(_order(r) == "S-T-A-R" for r in records)
    lines.append(f"plain S-T-A-R order: {star}/{n}")
    return "\n".join(lines)


def _order(rec: dict) -> str:
    order: list[str] = []
    for seg in rec["segments"]:
        letter = seg["label"][0] if seg["label"] != "OTHER" else ""
        if letter and (not order or order[-1] != letter):
            order.append(letter)
    return "-".join(order)


TEST_HANDS = ("t1", "t2")  # the blind test set, written in a separate pass by other hands
# Held out as a second evaluation set: writers who split an ask off as TASK far more often than
# w1-w6 and the blind-test hands do (data/README.md). Training on them lowered the blind test.
OTHER_WRITER_HANDS = ("w7", "w8", "w9", "w10", "w11", "w12")
SPLITS = ("train", "dev", "test", "other_writers")  # what build writes, one JSONL file each
DEV_SHARE = 0.15


def split_of(record: dict, hand: str) -> str:
    """test for the blind hands, other_writers for the held-out hands; else dev or train by a
    stable hash of the story (never of a sentence)."""
    if hand in TEST_HANDS:
        return "test"
    if hand in OTHER_WRITER_HANDS:
        return "other_writers"
    bucket = int(hashlib.sha256(record["story"].encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "dev" if bucket < DEV_SHARE else "train"


def build(raw_dir: Path, out_dir: Path) -> dict[str, int]:
    """Derive data/{train,dev,test,other_writers}.jsonl from the raw sources (raw files are never edited).

    The training split also gets the counterfactual and reshaped copies of its answers
    (star_scorer.datatools.counterfactual), after the originals, with ids ``<id>~<kind>``.
    """
    from star_scorer.datatools.counterfactual import derive

    splits: dict[str, list[dict]] = {name: [] for name in SPLITS}
    hands = sorted(p for p in Path(raw_dir).iterdir() if p.is_dir())
    seen: dict[str, str] = {}
    for hand_dir in hands:
        for rec in parse_raw_files(hand_dir.glob("*.txt")):
            if rec["id"] in seen:
                raise RawFormatError(f"id {rec['id']!r} in {hand_dir} already used in {seen[rec['id']]}")
            seen[rec["id"]] = str(hand_dir)
            rec["hand"] = hand_dir.name
            splits[split_of(rec, hand_dir.name)].append(rec)
    splits["train"] += derive(splits["train"])
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, records in splits.items():
        with (out_dir / f"{name}.jsonl").open("w", encoding="utf-8") as fh:
            for rec in records:
                fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    return {name: len(records) for name, records in splits.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    check = sub.add_parser("check", help="parse raw files and print a summary")
    check.add_argument("files", nargs="+", type=Path)
    build_cmd = sub.add_parser("build", help="derive the split JSONL files from data/raw")
    build_cmd.add_argument("--raw", type=Path, default=RAW_DATA_DIR)
    build_cmd.add_argument("--out", type=Path, default=DATA_DIR)
    args = parser.parse_args(argv)
    try:
        if args.cmd == "build":
            print(json.dumps(build(args.raw, args.out)))
            return 0
        records = parse_raw_files(args.files)
    except RawFormatError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(summary(records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
