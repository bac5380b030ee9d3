"""Check the failure-step lines of raw answer files (data/briefs/steps-2026-12.md): python scripts/check_steps.py data/raw/w1 ...

Prints each problem and a count per folder of answers that need steps, have them, and the steps found.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

STEPS = ("detection", "diagnosis", "mitigation", "prevention")
SEGMENT = re.compile(r"^\[(?P<label>[A-Z]+)\]\s*(?P<text>.*)$")
STEP = re.compile(r"^step (?P<name>[a-z]+):\s*(?P<text>.*)$")


def norm(text: str) -> str:
    return " ".join(text.split())


def answers(path: Path):
    block: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines() + ["### id: END"]:
        if line.startswith("### id:") and block:
            yield block
            block = []
        block.append(line)


def check(path: Path, counts: Counter) -> list[str]:
    problems = []
    for block in answers(path):
        rid = block[0][len("### id:"):].strip()
        meta = dict(line.split(": ", 1) for line in block[1:] if re.match(r"^(story_type|competency|steps): ", line))
        needs = meta.get("story_type") in ("failure", "lesson") or meta.get("competency") == "production_failure"
        segments, current = [], None
        for line in block[1:]:
            m = SEGMENT.match(line)
            if m:
                current = [m["label"], m["text"]]
                segments.append(current)
            elif current is not None and line.strip() and not re.match(r"^(evidence|unquantified|steps|step) ", line) \
                    and not line.startswith(("steps:", "evidence", "unquantified")):
                current[1] += " " + line
        step_lines = [(m["name"], norm(m["text"])) for line in block if (m := STEP.match(line))]
        if needs:
            counts["need"] += 1
        if "steps" not in meta:
            if needs:
                problems.append(f"{path}:{rid}: expected a 'steps:' line (story_type {meta.get('story_type')}, competency {meta.get('competency')})")
            if step_lines:
                problems.append(f"{path}:{rid}: step lines without a 'steps:' line")
            continue
        counts["annotated"] += 1
        named = meta["steps"].split()
        if named != ["none"]:
            bad = [n for n in named if n not in STEPS]
            if bad or named != [s for s in STEPS if s in named]:
                problems.append(f"{path}:{rid}: expected 'steps:' names from {STEPS} in that order, found {named}")
        else:
            named = []
        given = {n for n, _ in step_lines}
        if set(named) != given:
            problems.append(f"{path}:{rid}: 'steps:' names {sorted(named)} but step lines give {sorted(given)}")
        for name, text in step_lines:
            counts[name] += 1
            if name not in STEPS:
                problems.append(f"{path}:{rid}: unknown step {name!r}")
            if not any(text and text in norm(seg) for _, seg in segments):
                problems.append(f"{path}:{rid}: step {name} text not found verbatim in one segment: {text[:80]!r}")
    return problems


def main(argv: list[str]) -> int:
    total = 0
    for folder in argv or ["data/raw"]:
        counts: Counter = Counter()
        files = sorted(Path(folder).rglob("*.txt")) if Path(folder).is_dir() else [Path(folder)]
        for f in files:
            for p in check(f, counts):
                print(p)
                total += 1
        print(f"{folder}: {dict(counts)}")
    print(f"{total} problems")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
