"""Batch scoring: ``python -m star_scorer.jobs.score --input IN --output OUT [--model PATH_OR_MODELS_URI]``.

JSONL, CSV or Parquet, chosen by extension. Input columns: ``answer`` (required),
``id`` and ``question`` (optional; id defaults to the row number). One output row
per input row, in input order; a row whose answer is empty, missing or not text
gets ``error`` set and the run goes on. Imports nothing from training.
"""

from __future__ import annotations

import argparse
import logging
import sys

from star_scorer.io import read_rows, write_rows

logger = logging.getLogger(__name__)


def run(input_path: str, output_path: str, model: str | None = None, max_windows: int = 16, progress: bool = True) -> dict:
    from tqdm import tqdm

    from star_scorer.scorer import StarScorer

    rows = read_rows(input_path)
    scorer = StarScorer.load(model)
    parse_errors = {i: r.pop("_error") for i, r in enumerate(rows) if "_error" in r}
    with tqdm(total=len(rows), desc="scoring", unit="rows", file=sys.stderr, disable=not progress) as bar:
        out = scorer.score_rows(rows, max_windows=max_windows, progress=bar)
    for i, err in parse_errors.items():
        out[i]["error"] = err
    write_rows(out, output_path)
    n_err = sum(1 for r in out if r["error"])
    logger.info("scored %d rows (%d with errors) -> %s", len(out), n_err, output_path)
    return {"rows": len(out), "errors": n_err, "output": str(output_path)}


def main(argv: list[str] | None = None) -> dict:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(description="Score a file of interview answers (JSONL, CSV or Parquet).")
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--model", default=None, help="model folder or models:/ URI (default: newest under models/, else @champion)")
    parser.add_argument("--max-windows", type=int, default=16, help="encoder windows per forward pass (an answer of up to 254 tokens is one window)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    return run(args.input, args.output, args.model, args.max_windows, not args.no_progress)


if __name__ == "__main__":
    main()
