"""Scorer rows in and out of files: JSONL, CSV or Parquet, chosen by extension.

Input rows carry ``answer`` (required), ``id`` and ``question`` (optional). Output
rows are the scorer's; in CSV and Parquet the nested fields are JSON strings, so
every column has one plain type (the same frame the MLflow pyfunc returns).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

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
