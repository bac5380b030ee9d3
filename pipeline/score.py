"""Batch scoring: ``python -m pipeline.score --input IN --output OUT [--model PATH_OR_MODELS_URI]``.

JSONL, CSV or Parquet, chosen by extension. Input columns: ``answer`` (required),
``id`` and ``question`` (optional; id defaults to the row number). One output row
per input row, in input order; a row whose answer is empty, missing or not text
gets ``error`` set and the run goes on. Imports nothing from training.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import pandas as pd

logger = logging.getLogger(__name__)

FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def _format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"expected a file ending in one of {sorted(FORMATS)}, found {path.name!r}")
    return fmt


def read_rows(path: str | Path) -> list[dict]:
    path = Path(path)
    fmt = _format(path)
    if not path.exists():
        raise FileNotFoundError(f"expected an input file at {path}, found nothing there")
    if fmt == "jsonl":
        rows = []
        with path.open(encoding="utf-8") as fh:
            for line_no, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as err:
                    row = {"answer": None, "_error": f"line {line_no}: expected a JSON object, found invalid JSON ({err.msg})"}
                if not isinstance(row, dict):
                    row = {"answer": None, "_error": f"line {line_no}: expected a JSON object, found {type(row).__name__}"}
                rows.append(row)
    elif fmt == "csv":
        rows = pd.read_csv(path, dtype={"id": object}, keep_default_na=False, na_values=[]).to_dict("records")
    else:
        rows = pd.read_parquet(path).to_dict("records")
    if rows and not any("answer" in r for r in rows):
        raise ValueError(f"{path}: expected an 'answer' column (optional 'id', 'question'), found {sorted(rows[0])}")
    return rows


OUTPUT_COLUMNS = ("id", "sections", "result_quality", "missing_sections", "error")


def rows_to_frame(rows: list[dict]) -> pd.DataFrame:
    """Scorer rows -> DataFrame; nested fields as JSON strings so every column has one plain type."""
    return pd.DataFrame(
        {
            "id": [str(r["id"]) for r in rows],
            "sections": [json.dumps(r["sections"], ensure_ascii=False) for r in rows],
            "result_quality": [json.dumps(r["result_quality"]) for r in rows],
            "missing_sections": [json.dumps(r["missing_sections"]) for r in rows],
            "error": [r["error"] or "" for r in rows],
        },
        columns=list(OUTPUT_COLUMNS),
    )


def write_rows(rows: list[dict], path: str | Path) -> None:
    path = Path(path)
    fmt = _format(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "jsonl":
        with path.open("w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
        return
    flat = rows_to_frame(rows)
    if fmt == "csv":
        flat.to_csv(path, index=False)
    else:
        flat.to_parquet(path, index=False)


def run(input_path: str, output_path: str, model: str | None = None, batch_size: int = 16, progress: bool = True) -> dict:
    from tqdm import tqdm

    from pipeline.predictor import StarScorer

    rows = read_rows(input_path)
    scorer = StarScorer.load(model)
    parse_errors = {i: r.pop("_error") for i, r in enumerate(rows) if "_error" in r}
    with tqdm(total=len(rows), desc="scoring", unit="rows", file=sys.stderr, disable=not progress) as bar:
        out = scorer.score_rows(rows, batch_size=batch_size, progress=bar)
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
    parser.add_argument("--batch-size", type=int, default=16, help="encoder windows per forward pass")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    return run(args.input, args.output, args.model, args.batch_size, not args.no_progress)


if __name__ == "__main__":
    main()
