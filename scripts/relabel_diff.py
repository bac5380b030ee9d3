"""What a relabelling changed, split by split: ``python scripts/relabel_diff.py [--rev 1f4d230]``.

Compares the raw sources at a git revision (before) with the working tree (after):
answers whose text changed (a TASK written in), segments before and after, the
characters whose label moved (answers with unchanged text) and between which
labels, answers with a TASK, and facts and scores that changed. The datasheet
(data/README.md) quotes its output for the 2026-12 relabel.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from collections import Counter
from pathlib import Path

from star_scorer.datatools.corpus import parse_raw_file, split_of
from star_scorer.labels import FACTS, SECTION_LABELS
from star_scorer.paths import RAW_DATA_DIR
from star_scorer.text import char_labels


def raw_at(rev: str) -> dict[str, tuple[str, dict]]:
    """id -> (hand, record) for every raw file at ``rev``."""
    files = subprocess.run(["git", "ls-tree", "-r", "--name-only", rev, "data/raw"], capture_output=True, text=True, check=True).stdout.split()
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in files:
            if not name.endswith(".txt"):
                continue
            text = subprocess.run(["git", "show", f"{rev}:{name}"], capture_output=True, text=True, check=True).stdout
            path = Path(tmp) / name.replace("/", "_")
            path.write_text(text)
            hand = Path(name).parent.name
            out |= {r["id"]: (hand, r) for r in parse_raw_file(path)}
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rev", default="1f4d230", help="the revision before the relabel")
    args = parser.parse_args(argv)
    before = raw_at(args.rev)
    after = {r["id"]: (p.parent.name, r) for p in sorted(RAW_DATA_DIR.glob("*/*.txt")) for r in parse_raw_file(p)}
    stats: dict[str, Counter] = {}
    moves: dict[str, Counter] = {}
    for rid, (hand, new) in after.items():
        old = before[rid][1]
        split = split_of(new, hand)
        c = stats.setdefault(split, Counter())
        m = moves.setdefault(split, Counter())
        c["answers"] += 1
        c["segments before"] += len(old["segments"])
        c["segments after"] += len(new["segments"])
        c["TASK before"] += any(s["label"] == "TASK" for s in old["segments"])
        c["TASK after"] += any(s["label"] == "TASK" for s in new["segments"])
        c["facts changed"] += old["result_facts"] != new["result_facts"]
        delta = new["result_quality"] - old["result_quality"]
        c["score up"] += delta > 0
        c["score down"] += delta < 0
        c["with evidence"] += bool(new.get("result_evidence"))
        if old["answer"] != new["answer"]:
            c["TASK written in"] += 1
            continue
        a, b = char_labels(old["answer"], old["segments"]), char_labels(new["answer"], new["segments"])
        keep = (a >= 0) & (b >= 0)
        c["chars"] += int(keep.sum())
        c["chars moved"] += int((a[keep] != b[keep]).sum())
        for i, j in zip(a[keep][a[keep] != b[keep]], b[keep][a[keep] != b[keep]]):
            m[f"{SECTION_LABELS[i]} -> {SECTION_LABELS[j]}"] += 1
        old_spans = {(s["label"], s["text"]) for s in old["segments"]}
        c["segments unchanged"] += sum((s["label"], s["text"]) in old_spans for s in new["segments"])
    splits = ["train", "dev", "test", "other_writers"]
    rows = ["answers", "TASK written in", "segments before", "segments after", "segments unchanged", "chars moved",
            "TASK before", "TASK after", "facts changed", "score up", "score down", "with evidence"]
    print("| | " + " | ".join(splits) + " |")
    print("|---" * (len(splits) + 1) + "|")
    for row in rows:
        cells = []
        for s in splits:
            v = stats[s][row]
            if row == "chars moved":
                cells.append(f"{v:,} ({100 * v / max(stats[s]['chars'], 1):.1f}%)")
            elif row.startswith("TASK ") or row in ("facts changed", "score up", "score down", "with evidence"):
                cells.append(f"{v} ({100 * v / stats[s]['answers']:.0f}%)")
            else:
                cells.append(f"{v:,}")
        print(f"| {row} | " + " | ".join(cells) + " |")
    total = sum(moves.values(), Counter())
    print("\nCharacters that moved, all splits (answers with unchanged text): " +
          ", ".join(f"{k} {v:,}" for k, v in total.most_common(10)))
    fact_changes = Counter()
    for rid, (_, new) in after.items():
        old = before[rid][1]
        for f in FACTS:
            if old["result_facts"][f] != new["result_facts"][f]:
                fact_changes[f"{f} {'added' if new['result_facts'][f] else 'removed'}"] += 1
    print("Facts changed, all splits: " + ", ".join(f"{k} {v}" for k, v in fact_changes.most_common()))
    print("Score change distribution, all splits: " + ", ".join(
        f"{k:+d}: {v}" for k, v in sorted(Counter(new["result_quality"] - before[rid][1]["result_quality"] for rid, (_, new) in after.items()).items())))


if __name__ == "__main__":
    main()
