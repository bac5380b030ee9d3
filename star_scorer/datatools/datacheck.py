"""Corpus checks and statistics: ``python -m star_scorer.datatools.datacheck check|stats``.

``check`` fails (exit 1) on any record that breaks the schema or the labelling
guide, on derived files that differ from what data/raw builds, on stories shared
across splits, and on duplicate or near-duplicate answers across splits.
``stats`` prints the tables that data/README.md (the datasheet) quotes, and
whether each corpus target is met.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

from star_scorer.data import DataError, load_jsonl, second_records
from star_scorer.datatools.corpus import SPLITS, build
from star_scorer.labels import COMPETENCIES, FAILURE_STEPS, SECTION_LABELS, STAR_LABELS, STORY_TYPES, STYLES
from star_scorer.paths import DATA_DIR, RAW_DATA_DIR
from star_scorer.text import NUMBER_FLAGS

ML_DOMAINS = {"ml-engineering", "data-science"}
CORPUS_FIELDS = ("question", "style", "domain", "competency", "story_type", "story")
NEAR_DUP_JACCARD = 0.5  # share of word 5-grams two answers have in common
GIVEAWAYS = {
    "SITUATION": r"\b(the situation was|the context was|for context)\b",
    "TASK": r"\b(my task was|my (?:goal|job|responsibility) was|i was tasked)\b",
    "ACTION": r"\b(the actions? i took|what i did was|my action)\b",
    "RESULT": r"\b(as a result|the result was|the outcome was|in the end)\b",
}


def load_splits(data_dir: Path = DATA_DIR) -> dict[str, list[dict]]:
    return {name: load_jsonl(data_dir / f"{name}.jsonl") for name in SPLITS}


def _shingles(text: str, n: int = 5) -> set[str]:
    words = re.findall(r"\w+", text.lower())
    return {" ".join(words[i : i + n]) for i in range(max(len(words) - n + 1, 1))}


def near_duplicates(splits: dict[str, list[dict]], threshold: float = NEAR_DUP_JACCARD) -> list[tuple[str, str, float]]:
    """(id, id, jaccard) for answer pairs in different splits sharing >= threshold of their 5-grams."""
    shingles = {(name, r["id"]): _shingles(r["answer"]) for name, recs in splits.items() for r in recs}
    index: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for key, sh in shingles.items():
        for s in sh:
            index[s].append(key)
    overlap: Counter = Counter()
    for keys in index.values():
        if len(keys) > 50:  # a stock phrase, not evidence of a copied answer
            continue
        for i, a in enumerate(keys):
            for b in keys[i + 1 :]:
                if a[0] != b[0]:
                    overlap[(a, b) if a < b else (b, a)] += 1
    out = []
    for (a, b), inter in overlap.items():
        jac = inter / len(shingles[a] | shingles[b])
        if jac >= threshold:
            out.append((f"{a[0]}:{a[1]}", f"{b[0]}:{b[1]}", round(jac, 3)))
    return sorted(out)


def check(data_dir: Path = DATA_DIR, raw_dir: Path = RAW_DATA_DIR) -> list[str]:
    problems: list[str] = []
    try:
        splits = load_splits(data_dir)
    except (DataError, FileNotFoundError) as err:
        return [str(err)]
    for name, recs in splits.items():
        for line, rec in enumerate(recs, start=1):
            where = f"{data_dir / (name + '.jsonl')}:{line}"
            missing = [f for f in CORPUS_FIELDS if not rec.get(f)]
            if missing:
                problems.append(f"{where}: expected corpus fields {list(CORPUS_FIELDS)}, missing {missing}")
                continue
            for key, allowed in (("style", STYLES), ("competency", COMPETENCIES), ("story_type", STORY_TYPES)):
                if rec[key] not in allowed:
                    problems.append(f"{where}: field {key!r}: expected one of {list(allowed)}, found {rec[key]!r}")
            if needs_steps(rec) and "derived" not in rec and "failure_steps" not in rec:
                problems.append(f"{where}: {rec['id']}: a {rec['story_type']} story ({rec['competency']}) without failure steps: "
                                "expected a 'steps:' line in its raw file (data/briefs/steps-2026-12.md)")
    if raw_dir.exists():
        with tempfile.TemporaryDirectory() as tmp:
            build(raw_dir, Path(tmp))
            for name in SPLITS:
                if (Path(tmp) / f"{name}.jsonl").read_text() != (data_dir / f"{name}.jsonl").read_text():
                    problems.append(f"{data_dir / (name + '.jsonl')}: differs from what {raw_dir} builds; run `make data`")
    story_split: dict[str, str] = {}
    for name, recs in splits.items():
        for rec in recs:
            other = story_split.setdefault(rec["story"], name)
            if other != name:
                problems.append(f"story {rec['story']!r} appears in both {other} and {name}")
    answers: dict[str, str] = {}
    for name, recs in splits.items():
        for rec in recs:
            key = " ".join(rec["answer"].lower().split())
            if key in answers:
                problems.append(f"{name}:{rec['id']}: duplicate answer of {answers[key]}")
            answers.setdefault(key, f"{name}:{rec['id']}")
    for a, b, jac in near_duplicates(splits):
        problems.append(f"near-duplicate answers across splits: {a} ~ {b} (5-gram Jaccard {jac})")
    for name, recs in splits.items():  # second annotators' labels, where a split has them (`make agreement`)
        second = data_dir / "second_labels" / name
        if second.is_dir():
            try:
                second_records(recs, second)
            except DataError as err:
                problems.append(str(err))
    return problems


def needs_steps(rec: dict) -> bool:
    """The answers annotated for failure steps: failure and lesson stories, and production failures."""
    return rec.get("story_type") in ("failure", "lesson") or rec.get("competency") == "production_failure"


def _order_kind(rec: dict) -> str:
    seq: list[str] = []
    for s in rec["segments"]:
        if s["label"] != "OTHER" and (not seq or seq[-1] != s["label"]):
            seq.append(s["label"])
    present = set(seq)
    if seq == list(STAR_LABELS):
        return "plain S-T-A-R"
    missing = [lab for lab in STAR_LABELS if lab not in present]
    if seq and seq[0] == "RESULT" and "RESULT" in seq[1:]:
        return "teaser result first"
    if missing:
        return "missing " + "+".join(m.title() for m in missing)
    if seq.count("SITUATION") > 1 or ("ACTION" in seq and seq.index("SITUATION") > seq.index("ACTION")):
        return "late situation"
    if seq.index("TASK") > seq.index("ACTION"):
        return "task after actions"
    if seq.count("ACTION") > 1 and seq.count("RESULT") > 1:
        return "interleaved action/result"
    return "other order"


def _table(title: str, counts: dict[str, Counter], keys: list[str]) -> str:
    lines = [f"\n{title}", "| value | " + " | ".join(SPLITS) + " | all |", "|---" * (len(SPLITS) + 2) + "|"]
    for key in keys:
        cells = []
        total = 0
        for name in SPLITS:
            n = counts[name][key]
            total += n
            cells.append(f"{n} ({100 * n / max(sum(counts[name].values()), 1):.0f}%)")
        overall = sum(sum(c.values()) for c in counts.values())
        lines.append(f"| {key} | " + " | ".join(cells) + f" | {total} ({100 * total / max(overall, 1):.0f}%) |")
    return "\n".join(lines)


def _sentences(text: str) -> int:
    return max(1, len(re.findall(r"[.!?](?:\s|$)", text))) if re.search(r"[.!?]", text) else max(1, len(text.split()) // 15)


def _task_place(rec: dict) -> str | None:
    """Where an answer's first TASK stands: first, inside a scene sentence, after the Situation, after an Action."""
    segs = rec["segments"]
    i = next((k for k, s in enumerate(segs) if s["label"] == "TASK"), None)
    if i is None:
        return None
    before = [s["label"] for s in segs[:i] if s["label"] != "OTHER"]
    if not before:
        return "opens the answer"
    if not re.search(r"[.!?][\"')\]]*$", segs[i - 1]["text"]):
        return "clause of a sentence"
    return "after an Action or Result" if {"ACTION", "RESULT"} & set(before) else "after the Situation"


def shortcut_stats(train: list[dict]) -> tuple[list[str], dict[str, bool]]:
    """The habits a model must not learn from our writers (issue 13), measured on the training split."""
    from scipy.stats import spearmanr

    n = len(train)
    out = ["\nTraining data against our writers' habits (train split, counterfactual copies included)"]
    kinds = Counter(r.get("derived", "original") for r in train)
    pairs = Counter(r["derived"].removeprefix("short-") for r in train if "derived" in r)
    out.append("copies: " + ", ".join(f"{k}={v}" for k, v in sorted(kinds.items())))
    places = Counter(_task_place(r) for r in train)
    with_task = n - places[None]
    openers = Counter(" ".join(s["text"].lower().split()[:2]) for r in train for s in r["segments"] if s["label"] == "TASK")
    out.append(f"TASK in {with_task}/{n} answers ({100 * with_task / n:.0f}%); where it first stands: "
               + ", ".join(f"{k} {v}" for k, v in places.most_common() if k) + f"; {len(openers)} distinct two-word openings "
               f"over {sum(openers.values())} TASK segments (commonest: {', '.join(k for k, _ in openers.most_common(5))})")
    result_words = [(r["result_quality"], sum(len(s["text"].split()) for s in r["segments"] if s["label"] == "RESULT")) for r in train]
    with_result = [(q, w) for q, w in result_words if q > 0]
    rho = float(spearmanr([q for q, _ in with_result], [w for _, w in with_result]).statistic)
    lines = ["| score | answers | Result words min | median | max |", "|---|---|---|---|---|"]
    spread = {}
    for q in range(1, 5):
        ws = sorted(w for s, w in with_result if s == q)
        spread[q] = (ws[0], ws[-1]) if ws else (0, 0)
        lines.append(f"| {q} | {len(ws)} | {ws[0] if ws else '-'} | {ws[len(ws) // 2] if ws else '-'} | {ws[-1] if ws else '-'} |")
    out.append(f"Result length by score (rank correlation of Result words and score: {rho:.3f})\n" + "\n".join(lines))
    words = sorted(len(r["answer"].split()) for r in train)
    short = Counter(r["result_quality"] for r in train if 3 <= _sentences(r["answer"]) <= 5)
    out.append(f"answer words: median {words[n // 2]}, under 100 words {100 * sum(w < 100 for w in words) / n:.0f}%; "
               "short answers (3-5 sentences) by score: " + ", ".join(f"{q}: {short[q]}" for q in range(5)))
    nb = [c for r in train for c in ((r.get("result_evidence") or {}).get("NB") or [])]
    forms = Counter(k for c in nb for k, rx in NUMBER_FLAGS.items() if rx.search(c))
    plain = sum(not re.search(r"[$%]", c) for c in nb)
    out.append(f"quantified effects (NB evidence clauses): {len(nb)}; by form: " + ", ".join(f"{k} {forms[k]}" for k in NUMBER_FLAGS)
               + f"; without $ or %: {plain} ({100 * plain / max(len(nb), 1):.0f}%)")
    targets = {
        "train: TASK in >= 70% of answers": with_task / n >= 0.70,
        "train: rank correlation of Result words and score < 0.25": abs(rho) < 0.25,
        "train: every score 1-4 has a Result of <= 15 words and one of >= 60": all(lo <= 15 and hi >= 60 for lo, hi in spread.values()),
        "train: median answer <= 150 words, >= 25% under 100": words[n // 2] <= 150 and sum(w < 100 for w in words) / n >= 0.25,
        "train: >= 20 short (3-5 sentence) answers of every score 0-4": all(short[q] >= 20 for q in range(5)),
        "train: quantified effects in words, fractions/multiples and time/counts (>= 30 each), >= 40% without $ or %": all(
            forms[k] >= 30 for k in ("number_word", "fraction_multiple", "time_count")) and plain / max(len(nb), 1) >= 0.40,
        "train: >= 100 counterfactual copies each (number removed, effect dropped, neutral padding)": all(
            pairs[k] >= 100 for k in ("unquantified", "no_effect", "pad")),
    }
    return out, targets


def stats(data_dir: Path = DATA_DIR) -> tuple[str, dict[str, bool]]:
    """The datasheet's tables over the written answers (counterfactual copies left out), then the
    training split's habits with its copies in (what the model learns from)."""
    loaded = load_splits(data_dir)
    splits = {name: [r for r in recs if "derived" not in r] for name, recs in loaded.items()}
    allr = [r for recs in splits.values() for r in recs]
    by = lambda f: {n: Counter(f(r) for r in recs) for n, recs in splits.items()}  # noqa: E731

    def length_bin(r: dict) -> str:
        w = len(r["answer"].split())
        return "<80 words" if w < 80 else "80-400 words" if w <= 400 else ">400 words"

    out = ["answers: " + ", ".join(f"{n}={len(recs)}" for n, recs in splits.items()) + f", all={len(allr)}"]
    out.append(_table("Styles", by(lambda r: r["style"]), list(STYLES)))
    out.append(_table("Jobs", by(lambda r: "ML" if r["domain"] in ML_DOMAINS else "other jobs"), ["ML", "other jobs"]))
    top = [d for d, _ in Counter(r["domain"] for r in allr).most_common(25)]
    out.append(_table("Domains (top 25)", by(lambda r: r["domain"]), top))
    out.append(_table("Competencies", by(lambda r: r["competency"]), list(COMPETENCIES)))
    out.append(_table("Story types", by(lambda r: r["story_type"]), list(STORY_TYPES)))
    step_counts = {n: Counter() for n in SPLITS}
    for n, recs in splits.items():
        for r in recs:
            if "failure_steps" in r:
                step_counts[n]["annotated"] += 1
                step_counts[n]["none"] += not r["failure_steps"]
                for step, texts in r["failure_steps"].items():
                    step_counts[n][step] += 1
                    step_counts[n]["spans"] += len(texts)
    out.append(_table("Failure steps (answers showing each; spans: step texts)", step_counts,
                      ["annotated", *FAILURE_STEPS, "none", "spans"]))
    kinds = sorted({_order_kind(r) for r in allr})
    out.append(_table("Section order", by(_order_kind), kinds))
    out.append(_table("Length", by(length_bin), ["<80 words", "80-400 words", ">400 words"]))
    out.append(_table("Result quality", by(lambda r: str(r["result_quality"])), [str(i) for i in range(5)]))
    chars = {n: Counter() for n in SPLITS}
    for n, recs in splits.items():
        for r in recs:
            for s in r["segments"]:
                chars[n][s["label"]] += len(s["text"])
    out.append(_table("Section share (characters)", chars, list(SECTION_LABELS)))
    give_lines = ["\nGiveaway phrases (share of segments of each kind)", "| label | segments | with giveaway |", "|---|---|---|"]
    give_share = {}
    for label, pat in GIVEAWAYS.items():
        segs = [s["text"] for r in allr for s in r["segments"] if s["label"] == label]
        hits = sum(bool(re.search(pat, t, re.IGNORECASE)) for t in segs)
        give_share[label] = hits / max(len(segs), 1)
        give_lines.append(f"| {label} | {len(segs)} | {hits} ({100 * give_share[label]:.1f}%) |")
    out.append("\n".join(give_lines))
    words = [len(r["answer"].split()) for r in allr]
    n = len(allr)
    style = Counter(r["style"] for r in allr)
    scores = Counter(r["result_quality"] for r in allr)
    targets = {
        ">= 1,200 answers": n >= 1200,
        "test split >= 250 answers": len(splits["test"]) >= 250,
        ">= 30% from jobs other than ML": sum(r["domain"] not in ML_DOMAINS for r in allr) / n >= 0.30,
        "styles ~50/30/20 (written 40-60%, spoken 20-40%, asr 12-28%)": 0.4 <= style["written"] / n <= 0.6
        and 0.2 <= style["spoken"] / n <= 0.4 and 0.12 <= style["asr"] / n <= 0.28,
        "<= 60% plain S-T-A-R order": sum(_order_kind(r) == "plain S-T-A-R" for r in allr) / n <= 0.60,
        "giveaway phrases in <= 15% of each section kind": all(v <= 0.15 for v in give_share.values()),
        "lengths within 10-900 words": min(words) >= 10 and max(words) <= 900,
        # real answers are short (issue 13: realworld median 134 words); 10% keeps windowed long answers in every split
        ">= 10% longer than 400 words": sum(w > 400 for w in words) / n >= 0.10,
        ">= 10% under 80 words": sum(w < 80 for w in words) / n >= 0.10,
        "every score level >= 12%": all(scores[i] / n >= 0.12 for i in range(5)),
        "every competency present": set(COMPETENCIES) <= {r["competency"] for r in allr},
    }
    habits, habit_targets = shortcut_stats(loaded["train"])
    out += habits
    targets |= habit_targets
    out.append("\nTargets")
    out += [f"- [{'x' if ok else ' '}] {name}" for name, ok in targets.items()]
    out.append(f"\nwords per answer: min {min(words)}, median {sorted(words)[n // 2]}, mean {sum(words) / n:.0f}, max {max(words)}")
    return "\n".join(out), targets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("cmd", choices=("check", "stats"))
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    parser.add_argument("--raw-dir", type=Path, default=RAW_DATA_DIR)
    args = parser.parse_args(argv)
    if args.cmd == "check":
        problems = check(args.data_dir, args.raw_dir)
        for p in problems:
            print(p)
        print(f"data-check: {len(problems)} problem(s)")
        return 1 if problems else 0
    text, targets = stats(args.data_dir)
    print(text)
    return 0 if all(targets.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
