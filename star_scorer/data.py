"""Load and validate labelled answers (the JSONL schema every dataset keeps).

A record::

    {"id": "...", "question": "...", "answer": "<segment texts joined by single spaces>",
     "segments": [{"text": "...", "label": "SITUATION"}, ...],
     "result_quality": 0-4, "result_facts": {"T": bool, "B": bool, "NB": bool, "V": bool},
     "style": "written|spoken|asr", "domain": "..."}

Bad records are rejected with the file, the line and the problem named.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from star_scorer.labels import FACTS, FAILURE_STEPS, SECTION_LABELS, STYLES, rubric_score

logger = logging.getLogger(__name__)

REQUIRED_FIELDS = ("id", "answer", "segments", "result_quality", "result_facts")


class DataError(ValueError):
    """A record breaks the dataset schema; the message names file, line and field."""


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    label: str


def segment_spans(segments: Iterable[dict]) -> list[Span]:
    """Character spans of segments in the answer made by joining them with single spaces."""
    spans: list[Span] = []
    pos = 0
    for seg in segments:
        text = seg["text"]
        spans.append(Span(pos, pos + len(text), seg["label"]))
        pos += len(text) + 1
    return spans


def evidence_texts(record: dict) -> dict[str, list[str]]:
    """``result_evidence`` as {fact: [clause, ...]} (a single string is one clause; absent: {})."""
    raw = record.get("result_evidence") or {}
    return {fact: [texts] if isinstance(texts, str) else list(texts) for fact, texts in raw.items() if texts}


def _found_spans(answer: str, within: list[Span], texts: dict[str, list[str]]) -> dict[str, list[tuple[int, int]]]:
    """Character spans of each key's texts, each the first place it occurs inside one of the ``within`` spans."""
    out: dict[str, list[tuple[int, int]]] = {}
    for key, key_texts in texts.items():
        for text in key_texts:
            for span in within:
                at = answer.find(text, span.start, span.end)
                if at >= 0:
                    out.setdefault(key, []).append((at, at + len(text)))
                    break
    return out


def evidence_spans(record: dict) -> dict[str, list[tuple[int, int]]]:
    """Character spans of each fact's evidence clauses, each found inside a RESULT segment of the answer."""
    results = [span for span in segment_spans(record["segments"]) if span.label == "RESULT"]
    return _found_spans(record["answer"], results, evidence_texts(record))


def step_spans(record: dict) -> dict[str, list[tuple[int, int]]] | None:
    """Character spans of each failure step's texts (``failure_steps``), each found inside one segment; None when
    the record was not annotated for steps ({} when it was and shows none)."""
    steps = record.get("failure_steps")
    if steps is None:
        return None
    return _found_spans(record["answer"], segment_spans(record["segments"]), steps)


def first_difference(a: str, b: str) -> int:
    """Index of the first character where ``a`` and ``b`` differ (the shorter length if one is a prefix)."""
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def validate_record(rec: object, where: str) -> dict:
    """Return the record if it follows the schema, else raise DataError naming ``where``."""
    if not isinstance(rec, dict):
        raise DataError(f"{where}: expected a JSON object, found {type(rec).__name__}")
    missing = [f for f in REQUIRED_FIELDS if f not in rec]
    if missing:
        raise DataError(f"{where}: expected fields {list(REQUIRED_FIELDS)}, missing {missing}")
    segments = rec["segments"]
    if not isinstance(segments, list) or not segments:
        raise DataError(f"{where}: field 'segments': expected a non-empty list, found {segments!r:.60}")
    for i, seg in enumerate(segments):
        if not isinstance(seg, dict) or not isinstance(seg.get("text"), str) or "label" not in seg:
            raise DataError(f"{where}: segments[{i}]: expected {{'text': str, 'label': str}}, found {seg!r:.80}")
        if seg["label"] not in SECTION_LABELS:
            raise DataError(f"{where}: segments[{i}].label: expected one of {list(SECTION_LABELS)}, found {seg['label']!r}")
        if not seg["text"].strip() or seg["text"] != seg["text"].strip():
            raise DataError(f"{where}: segments[{i}].text: expected non-empty text without surrounding spaces, found {seg['text']!r:.60}")
    joined = " ".join(seg["text"] for seg in segments)
    if rec["answer"] != joined:
        at = first_difference(rec["answer"], joined)
        raise DataError(
            f"{where}: field 'answer': expected the segment texts joined by single spaces, "
            f"first difference at character {at}: {rec['answer'][at:at + 30]!r} vs {joined[at:at + 30]!r}"
        )
    facts = rec["result_facts"]
    if not isinstance(facts, dict) or set(facts) != set(FACTS) or not all(isinstance(v, bool) for v in facts.values()):
        raise DataError(f"{where}: field 'result_facts': expected booleans for exactly {list(FACTS)}, found {facts!r:.80}")
    score = rec["result_quality"]
    if not isinstance(score, int) or isinstance(score, bool) or not 0 <= score <= 4:
        raise DataError(f"{where}: field 'result_quality': expected an integer 0-4, found {score!r}")
    has_result = any(seg["label"] == "RESULT" for seg in segments)
    expected = rubric_score(has_result, facts)
    if score != expected:
        raise DataError(
            f"{where}: field 'result_quality': the rubric gives {expected} for facts {facts} "
            f"({'with' if has_result else 'without'} a RESULT segment), found {score}"
        )
    evidence = rec.get("result_evidence")
    if evidence is not None:
        if not isinstance(evidence, dict) or set(evidence) - set(FACTS):
            raise DataError(f"{where}: field 'result_evidence': expected {{fact: clause or [clauses]}} over {list(FACTS)}, found {evidence!r:.80}")
        found = evidence_spans(rec)
        for fact, texts in evidence_texts(rec).items():
            if not facts[fact]:
                raise DataError(f"{where}: field 'result_evidence': evidence for {fact}, which its result_facts say does not hold")
            if len(found.get(fact, [])) != len(texts):
                raise DataError(f"{where}: field 'result_evidence.{fact}': expected clauses found inside a RESULT segment, found {texts!r:.80}")
    steps = rec.get("failure_steps")
    if steps is not None:
        if not isinstance(steps, dict) or set(steps) - set(FAILURE_STEPS) or \
                not all(isinstance(t, list) and t and all(isinstance(x, str) and x for x in t) for t in steps.values()):
            raise DataError(f"{where}: field 'failure_steps': expected {{step: [text, ...]}} over {list(FAILURE_STEPS)}, found {steps!r:.80}")
        found = step_spans(rec)
        for step, texts in steps.items():
            if len(found.get(step, [])) != len(texts):
                raise DataError(f"{where}: field 'failure_steps.{step}': expected texts found inside one segment each, found {texts!r:.80}")
    if "style" in rec and rec["style"] not in STYLES:
        raise DataError(f"{where}: field 'style': expected one of {list(STYLES)}, found {rec['style']!r}")
    return rec


def load_jsonl(path: str | Path) -> list[dict]:
    """Read a labelled JSONL file, validating every line."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"expected a labelled JSONL file at {path}, found nothing there")
    records: list[dict] = []
    ids: dict[str, int] = {}
    with path.open(encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            where = f"{path}:{line_no}"
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(f"{where}: expected a JSON object, found invalid JSON ({err.msg})") from None
            rec = validate_record(rec, where)
            if rec["id"] in ids:
                raise DataError(f"{where}: field 'id': {rec['id']!r} already used on line {ids[rec['id']]}")
            ids[rec["id"]] = line_no
            records.append(rec)
    if not records:
        raise DataError(f"{path}: expected at least one record, found none")
    return records


def write_jsonl(records: Iterable[dict], path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")


# -- second annotators' labels (data/second_labels/<split>/*.txt): make agreement, data-check and evaluate read them
_SEGMENT = re.compile(r"\[([A-Z]+)\] (.*)$")


def parse_second_labels(path: Path) -> dict[str, dict]:
    """id -> {"segments": [{"text", "label"}], "facts": {T, B, NB, V}} from one annotation file."""
    out: dict[str, dict] = {}
    current = None
    for line_no, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.rstrip()
        if not line.strip():
            continue
        if line.startswith("### id: "):
            current = line[len("### id: "):].strip()
            if current in out:
                raise DataError(f"{path}:{line_no}: id {current!r} appears twice")
            out[current] = {"segments": [], "facts": None}
        elif current is None:
            raise DataError(f"{path}:{line_no}: expected a '### id: ...' line first, found {line[:60]!r}")
        elif line.startswith("facts:"):
            names = line[len("facts:"):].split()
            unknown = [n for n in names if n not in FACTS]
            if unknown:
                raise DataError(f"{path}:{line_no}: expected facts among {list(FACTS)}, found {unknown}")
            out[current]["facts"] = {f: f in names for f in FACTS}
        else:
            m = _SEGMENT.match(line)
            if not m or m.group(1) not in SECTION_LABELS:
                raise DataError(f"{path}:{line_no}: expected '[LABEL] text' with LABEL in {list(SECTION_LABELS)}, found {line[:60]!r}")
            out[current]["segments"].append({"text": m.group(2).strip(), "label": m.group(1)})
    for rid, ann in out.items():
        if ann["facts"] is None:
            raise DataError(f"{path}: answer {rid!r} has no 'facts:' line")
    return out


def second_records(records: list[dict], second_dir: Path) -> list[dict]:
    """The first records relabelled by the second annotator, in the same order; every answer must be there, text exact."""
    files = sorted(second_dir.glob("*.txt"))
    if not files:
        raise DataError(f"{second_dir}: expected annotation files (*.txt), found none")
    labels: dict[str, dict] = {}
    for path in files:
        for rid, ann in parse_second_labels(path).items():
            if rid in labels:
                raise DataError(f"{path}: answer {rid!r} is labelled in two files")
            labels[rid] = ann
    by_id = {r["id"]: r for r in records}
    extra = sorted(set(labels) - set(by_id))
    missing = sorted(set(by_id) - set(labels))
    if extra or missing:
        raise DataError(f"{second_dir}: expected the ids of the data file; missing {missing[:5]} ({len(missing)}), unknown {extra[:5]} ({len(extra)})")
    out = []
    for rec in records:
        ann = labels[rec["id"]]
        joined = " ".join(s["text"] for s in ann["segments"])
        if joined != rec["answer"]:
            at = first_difference(joined, rec["answer"])
            raise DataError(f"{rec['id']}: second labels' text differs from the answer at char {at}: "
                            f"expected {rec['answer'][at:at + 40]!r}, found {joined[at:at + 40]!r}")
        has_result = any(s["label"] == "RESULT" for s in ann["segments"])
        facts = ann["facts"] if has_result else {f: False for f in FACTS}
        out.append({**rec, "segments": ann["segments"], "result_facts": facts, "result_quality": rubric_score(has_result, facts)})
    return out


def as_predictions(records: list[dict]) -> list[dict]:
    """Labelled records in the scorer's output shape, so one annotator can be scored like a model."""
    return [{
        "id": rec["id"],
        "sections": [{"label": s["label"], "start": span.start, "end": span.end}
                     for s, span in zip(rec["segments"], segment_spans(rec["segments"]))],
        "result_quality": {"score": rec["result_quality"], "facts": dict(rec["result_facts"])},
        "error": None,
    } for rec in records]
