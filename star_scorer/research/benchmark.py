"""Scoring speed: ``python -m star_scorer.research.benchmark [--data FILE] [--model DIR] [--devices cpu cuda]``.

Timings on shared machines are noisy, so every figure is also given as a ratio to
the first device's, measured in the same run over the same answers. Two phases are
timed per device: the model's forward passes alone (``raw_outputs``) and the whole
``score_rows`` path that users run (forward passes plus word-level decoding, which
runs on the CPU whatever the device).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import torch

from star_scorer.io import read_rows
from star_scorer.scorer import StarScorer, answer_problem


def _timed(device: str, fn, *args, **kwargs) -> float:
    """Seconds ``fn`` takes, with CUDA's queued work finished on both sides of the clock."""
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    sync()
    start = time.perf_counter()
    fn(*args, **kwargs)
    sync()
    return time.perf_counter() - start


def benchmark(model: str | Path | None, rows: list[dict], devices: list[str], max_windows: int = 16, repeats: int = 3) -> dict:
    """Answers per second for each device and phase, best of ``repeats``, with ratios to ``devices[0]``."""
    answers = [r["answer"] for r in rows if answer_problem(r.get("answer")) is None]  # what score_rows would score
    if not answers:
        raise ValueError("expected rows with non-empty 'answer' text to time, found none")
    results: dict[str, dict] = {}
    for device in devices:
        scorer = StarScorer.load(model, device=device)
        scorer.score_rows(rows[:max_windows], max_windows=max_windows)  # warm-up: allocator, kernels, caches
        forward = min(_timed(device, lambda s: list(s.raw_outputs(answers, max_windows)), scorer) for _ in range(repeats))
        full = min(_timed(device, scorer.score_rows, rows, max_windows=max_windows) for _ in range(repeats))
        name = torch.cuda.get_device_name() if device.startswith("cuda") else f"cpu ({torch.get_num_threads()} threads)"
        results[device] = {
            "hardware": name,
            "forward_answers_per_s": len(answers) / forward,
            "score_answers_per_s": len(rows) / full,
            "forward_seconds": forward,
            "score_seconds": full,
        }
    base = results[devices[0]]
    for res in results.values():
        res["forward_speedup"] = res["forward_answers_per_s"] / base["forward_answers_per_s"]
        res["score_speedup"] = res["score_answers_per_s"] / base["score_answers_per_s"]
    return {"answers": len(answers), "rows": len(rows), "max_windows": max_windows, "repeats": repeats, "devices": results}


def render(report: dict) -> str:
    lines = [
        f"{report['rows']} rows, batch {report['max_windows']}, best of {report['repeats']}; speed-ups against the first device",
        "| device | hardware | forward answers/s | x | score answers/s | x |",
        "|---|---|---|---|---|---|",
    ]
    for device, r in report["devices"].items():
        lines.append(
            f"| {device} | {r['hardware']} | {r['forward_answers_per_s']:.1f} | {r['forward_speedup']:.2f} "
            f"| {r['score_answers_per_s']:.1f} | {r['score_speedup']:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data/test.jsonl", help="JSONL/CSV/Parquet with an 'answer' column")
    parser.add_argument("--model", default=None, help="model folder or MLflow URI (default: newest under models/)")
    default_devices = ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]
    parser.add_argument("--devices", nargs="+", default=default_devices, help="first one is the baseline of the ratios")
    parser.add_argument("--max-windows", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--limit", type=int, default=None, help="time only the first N rows")
    parser.add_argument("--out", default=None, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    rows = read_rows(args.data)[: args.limit]
    report = benchmark(args.model, rows, args.devices, args.max_windows, args.repeats)
    print(render(report))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2), encoding="utf-8")
    return report


if __name__ == "__main__":
    main()
