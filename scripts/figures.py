"""One model on every labelled set, one table: ``python scripts/figures.py MODEL [--data FILE ...]``.

Runs ``make evaluate``'s code (reports under reports/<model>/<set>/) on the real-world
set, the blind test, the held-out writers and dev, and prints the figures issue 13
sets targets on, side by side, so a change is read on real answers beside our own.
"""

from __future__ import annotations

import argparse
import json
import logging

from star_scorer.jobs.evaluate import run

SETS = ["../shared/realworld/dev.jsonl", "data/test.jsonl", "data/other_writers.jsonl", "data/dev.jsonl"]


def row(data: str, model: str) -> dict:
    result = run(data, model, log_to_mlflow=False)
    metrics = json.loads(open(f"{result['report_dir']}/metrics.json").read())
    styles = {k.split("=", 1)[1]: v["section_macro_f1"] for k, v in metrics["slices"].items() if k.startswith("style=")}
    q = metrics["result_quality"]
    return {
        "data": data,
        "sections": metrics["section_macro_f1"],
        **{label: v["f1"] for label, v in metrics["sections"]["per_label"].items() if label != "OTHER"},
        **{f"style {k}": v for k, v in sorted(styles.items())},
        "QWK": q["qwk"], "exact": q["exact"], "within one": q["within_one"],
        **{f"fact {k}": v["f1"] for k, v in metrics["facts"].items()},
        "evidence": metrics["evidence"]["char_f1"],
        **story_row(metrics.get("story")),
    }


def story_row(story: dict | None) -> dict:
    if not story:
        return {}
    return {"story type": story["story_type_accuracy"], "competency top-1": story["competency_top1"],
            "competency top-2": story["competency_top2"], **{f"step {k}": v for k, v in story["step_char_f1"].items()}}


def main(argv: list[str] | None = None) -> list[dict]:
    logging.basicConfig(level=logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model")
    parser.add_argument("--data", nargs="*", default=SETS)
    args = parser.parse_args(argv)
    rows = [row(d, args.model) for d in args.data]
    keys = list(dict.fromkeys(k for r in rows for k in r if k != "data"))
    print("| figure | " + " | ".join(r["data"].split("/")[-2] + "/" + r["data"].split("/")[-1].removesuffix(".jsonl") for r in rows) + " |")
    print("|---" * (len(rows) + 1) + "|")
    for k in keys:
        print(f"| {k} | " + " | ".join(f"{r[k]:.3f}" if k in r else "-" for r in rows) + " |")
    return rows


if __name__ == "__main__":
    main()
