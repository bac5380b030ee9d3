"""Check one raw answer file written from a brief (data/briefs/w21-w28.md): python scripts/check_batch.py FILE [FILE ...]

Parses each file as `make data` does (format, evidence, unquantified rewrites, step lines), then checks
that failure and lesson stories carry step lines, and prints the counts a brief sets quotas on: scores,
styles, lengths, answers with a TASK, Result words by score, competencies. Prints OK when nothing failed.
"""

from __future__ import annotations

import statistics
import sys
from collections import Counter
from pathlib import Path

from star_scorer.datatools.corpus import RawFormatError, parse_raw_file
from star_scorer.datatools.datacheck import needs_steps


def report(path: Path) -> bool:
    try:
        records = parse_raw_file(path)
    except RawFormatError as err:
        print(f"FAIL {err}")
        return False
    problems = [f"{r['id']}: a {r['story_type']} story needs a 'steps:' line (data/briefs/steps-2026-12.md)"
                for r in records if needs_steps(r) and "failure_steps" not in r]
    problems += [f"{r['id']}: over 320 words ({len(r['answer'].split())})" for r in records if len(r["answer"].split()) > 320]
    problems += [f"{r['id']}: asr style must be lowercase with no punctuation" for r in records
                 if r["style"] == "asr" and (r["answer"] != r["answer"].lower() or any(c in r["answer"] for c in ".,;:?!"))]
    words = [len(r["answer"].split()) for r in records]
    result_words: dict[int, list[int]] = {}
    for r in records:
        n = sum(len(s["text"].split()) for s in r["segments"] if s["label"] == "RESULT")
        result_words.setdefault(r["result_quality"], []).append(n)
    print(f"{path}: {len(records)} answers")
    print("  scores    ", dict(sorted(Counter(r["result_quality"] for r in records).items())))
    print("  styles    ", dict(Counter(r["style"] for r in records)))
    print("  words     ", f"median {statistics.median(words):.0f}, under 100: {sum(w < 100 for w in words)}, over 180: {sum(w > 180 for w in words)}")
    print("  with TASK ", sum(any(s["label"] == "TASK" for s in r["segments"]) for r in records))
    print("  Result words by score", {k: sorted(v) for k, v in sorted(result_words.items())})
    print("  competency", dict(Counter(r["competency"] for r in records)))
    print("  story type", dict(Counter(r["story_type"] for r in records)))
    for p in problems:
        print(f"  PROBLEM {p}")
    if not problems:
        print("OK")
    return not problems


if __name__ == "__main__":
    sys.exit(0 if all([report(Path(p)) for p in sys.argv[1:]]) else 1)
