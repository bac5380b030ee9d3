"""Speed and memory of batch scoring: ``python -m star_scorer.research.bench [--data FILE] [--model M] [--rss-rows 1000 50000]``.

In one run, on the same answers and the same machine (timings on shared machines are
noisy, so the figures that count are the ratios, each path timed in interleaved rounds and
the median kept):

- **naive**: what a user would write with transformers alone: a ``token-classification``
  pipeline (the sections) and a ``text-classification`` pipeline (the score) per
  answer, fp32, batch 1, over the same fine-tuned encoder (its heads are untrained:
  only their speed is measured);
- **scorer fp32** and **scorer** at the precision it runs by default (``StarScorer``'s
  ``precision="auto"``: bf16 weights where the CPU or GPU does bf16 matmuls), through
  ``score_rows``, the path the CLI, REST and Spark use (windows batched and
  length-sorted, decoding included).

Where the answers are labelled, the scorer's section macro-F1 and QWK are shown at both
precisions (the target: within 0.005 of fp32). Then peak RSS of the batch CLI
(``star_scorer.jobs.score``, a fresh process each) on the answers repeated to 1,000
and 50,000 rows: memory must stay flat in the input's size.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from star_scorer.io import read_rows
from star_scorer.scorer import StarScorer, answer_problem

logger = logging.getLogger(__name__)

DEFAULT_DATA = "../shared/realworld/dev.jsonl"  # real answers of typical length; data/dev.jsonl when absent
NAIVE_LABELS = 5


def naive_pipelines(scorer: StarScorer):
    """A token-classification and a text-classification pipeline over the scorer's own fine-tuned encoder, fp32."""
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoModelForTokenClassification, pipeline

    dropped = ("architectures", "_name_or_path", "id2label", "label2id", "num_labels")
    encoder = {k: v for k, v in scorer.config.encoder.items() if k not in dropped}
    config = AutoConfig.for_model(**encoder, num_labels=NAIVE_LABELS)
    state = {k: v.float() for k, v in scorer.model.encoder.state_dict().items()}
    models = []
    for cls in (AutoModelForTokenClassification, AutoModelForSequenceClassification):
        model = cls.from_config(config)
        model.base_model.load_state_dict(state, strict=False)
        models.append(model.float().eval())
    kwargs = {"tokenizer": scorer.tokenizer, "device": -1}
    return (pipeline("token-classification", model=models[0], aggregation_strategy="simple", stride=64, **kwargs),
            pipeline("text-classification", model=models[1], **kwargs))


def time_naive(pipelines, answers: list[str]) -> float:
    sections, score = pipelines
    start = time.perf_counter()
    for text in answers:
        sections(text)
        score(text, truncation=True)
    return time.perf_counter() - start


def time_scorer(scorer: StarScorer, rows: list[dict], max_windows: int) -> tuple[float, list[dict]]:
    start = time.perf_counter()
    out = scorer.score_rows(rows, max_windows=max_windows)
    return time.perf_counter() - start, out


def figures(records: list[dict], rows: list[dict]) -> dict | None:
    if not records or "segments" not in records[0]:
        return None
    from star_scorer.metrics import evaluate_predictions

    report = evaluate_predictions(records, rows)
    return {"section_macro_f1": report["section_macro_f1"], "qwk": report["qwk"]}


def peak_rss(model: str | None, rows: list[dict], n: int, precision: str) -> dict:
    """Peak RSS (MB) and seconds of a fresh ``star_scorer.jobs.score`` process on ``rows`` repeated to ``n`` rows."""
    with tempfile.TemporaryDirectory(prefix="star-bench-") as tmp:
        src, out = Path(tmp) / "in.jsonl", Path(tmp) / "out.jsonl"
        with src.open("w", encoding="utf-8") as fh:
            for i in range(n):
                fh.write(json.dumps({"id": f"r{i}", "answer": rows[i % len(rows)]["answer"]}) + "\n")
        code = (  # the peak of this process's own memory: VmHWM (ru_maxrss would keep the forking parent's peak)
            "from star_scorer.jobs import score; "
            f"score.run({str(src)!r}, {str(out)!r}, {model!r}, progress=False, precision={precision!r}); "
            "print(next(line.split()[1] for line in open('/proc/self/status') if line.startswith('VmHWM:')))"
        )
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"scoring {n} rows failed:\n{done.stderr[-2000:]}")
        seconds = time.perf_counter() - start
        lines = sum(1 for _ in out.open(encoding="utf-8"))
    return {"rows": n, "output_rows": lines, "peak_rss_mb": int(done.stdout.split()[-1]) / 1024, "seconds": seconds}


def matmul_gflops(dtype: torch.dtype, tokens: int = 4096, repeats: int = 20) -> float:
    """One CPU thread's speed on the encoder's largest matmul (tokens x 384 -> 1536), in GFLOP/s at ``dtype``.

    The scorer's lead over the fp32 pipelines rests on the machine's bf16 matmuls, and shared machines differ
    in them (2x between two hosts of one kind), so the report names this beside the ratio."""
    x, w = torch.randn(tokens, 384, dtype=dtype), torch.randn(1536, 384, dtype=dtype)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(3):
            torch.nn.functional.linear(x, w)
        start = time.perf_counter()
        for _ in range(repeats):
            torch.nn.functional.linear(x, w)
        seconds = (time.perf_counter() - start) / repeats
    finally:
        torch.set_num_threads(before)
    return 2 * tokens * 384 * 1536 / seconds / 1e9


def bench(data: str, model: str | None, limit: int | None, max_windows: int, rss_rows: list[int], rounds: int = 3) -> dict:
    records = read_rows(data)[:limit]
    rows = [{"id": r.get("id", i), "answer": r["answer"]} for i, r in enumerate(records) if answer_problem(r.get("answer")) is None]
    answers = [r["answer"] for r in rows]
    fast = StarScorer.load(model)  # precision "auto"
    fp32 = StarScorer.load(model, precision="fp32")
    naive = naive_pipelines(fp32)
    time_naive(naive, answers[:1])  # warm-up
    for scorer in (fp32, fast):
        scorer.score_rows(rows[:max_windows], max_windows=max_windows)
    seconds: dict[str, list[float]] = {"naive": [], "scorer_fp32": [], "scorer": []}
    for _ in range(rounds):  # interleaved, so a slow spell of the shared machine falls on every path
        seconds["naive"].append(time_naive(naive, answers))
        fp32_s, fp32_rows = time_scorer(fp32, rows, max_windows)
        fast_s, fast_rows = time_scorer(fast, rows, max_windows)
        seconds["scorer_fp32"].append(fp32_s)
        seconds["scorer"].append(fast_s)
    naive_s, fp32_s, fast_s = (statistics.median(seconds[k]) for k in ("naive", "scorer_fp32", "scorer"))
    report = {
        "data": data, "answers": len(rows), "mean_words": sum(len(a.split()) for a in answers) / len(answers),
        "hardware": f"{torch.get_num_threads()} CPU threads" if fast.device.type == "cpu" else torch.cuda.get_device_name(),
        "precision": fast.precision, "rounds": rounds,
        "attention": fast.model.encoder.config._attn_implementation,
        "answers_per_s": {"naive": len(rows) / naive_s, "scorer_fp32": len(rows) / fp32_s, "scorer": len(rows) / fast_s},
        "figures": {"fp32": figures(records, fp32_rows), fast.precision: figures(records, fast_rows)},
    }
    report["speedup"] = {"scorer_fp32": naive_s / fp32_s, "scorer": naive_s / fast_s}
    if fast.device.type == "cpu":
        report["matmul_gflops"] = {"fp32": matmul_gflops(torch.float32), "bf16": matmul_gflops(torch.bfloat16)}
    report["rss"] = [peak_rss(model, rows, n, "auto") for n in rss_rows]
    return report


def render(r: dict) -> str:
    aps, x = r["answers_per_s"], r["speedup"]
    lines = [
        f"{r['answers']} answers from {r['data']} (mean {r['mean_words']:.0f} words), {r['hardware']}, one run: "
        f"the median of {r['rounds']} interleaved rounds per path; scorer attention {r['attention']}",
        "| path | answers/s | x naive |",
        "|---|---|---|",
        f"| naive transformers pipelines (token + text classification, fp32, batch 1) | {aps['naive']:.1f} | 1.00 |",
        f"| StarScorer.score_rows, fp32 | {aps['scorer_fp32']:.1f} | {x['scorer_fp32']:.2f} |",
        f"| StarScorer.score_rows, {r['precision']} (default) | {aps['scorer']:.1f} | **{x['scorer']:.2f}** |",
    ]
    if r.get("matmul_gflops"):
        g = r["matmul_gflops"]
        lines.append(f"\nthis machine's matmul, one thread: fp32 {g['fp32']:.0f} GFLOP/s, bf16 {g['bf16']:.0f} GFLOP/s "
                     f"({g['bf16'] / g['fp32']:.1f}x): the scorer's lead follows the second figure")
    if all(r["figures"].values()):
        lines += ["", "| precision | section macro-F1 | QWK |", "|---|---|---|"]
        lines += [f"| {name} | {f['section_macro_f1']:.4f} | {f['qwk']:.4f} |" for name, f in r["figures"].items()]
    if r["rss"]:
        lines += ["", "| rows scored by the CLI | peak RSS | seconds |", "|---|---|---|"]
        lines += [f"| {m['rows']:,} | {m['peak_rss_mb']:.0f} MB | {m['seconds']:.0f} |" for m in r["rss"]]
        if len(r["rss"]) > 1:
            first, last = r["rss"][0], r["rss"][-1]
            lines.append(f"\npeak RSS at {last['rows']:,} rows / at {first['rows']:,}: {last['peak_rss_mb'] / first['peak_rss_mb']:.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help=f"JSONL/CSV/Parquet with 'answer' (default {DEFAULT_DATA}, else data/dev.jsonl)")
    parser.add_argument("--model", default=None, help="model folder or MLflow URI (default: newest under models/)")
    parser.add_argument("--limit", type=int, default=None, help="time only the first N answers")
    parser.add_argument("--max-windows", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds per path; the median counts")
    parser.add_argument("--rss-rows", type=int, nargs="*", default=[1000, 50000], help="input sizes for the peak-RSS runs")
    parser.add_argument("--out", default=None, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    data = args.data or (DEFAULT_DATA if Path(DEFAULT_DATA).exists() else "data/dev.jsonl")
    report = bench(data, args.model, args.limit, args.max_windows, args.rss_rows, args.rounds)
    print(render(report))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2), encoding="utf-8")
    return report


if __name__ == "__main__":
    main()
