"""Scorer rows in and out of files: JSONL, CSV or Parquet, chosen by extension.

Input rows carry ``answer`` (required), ``id`` and ``question`` (optional). Output
rows are the scorer's; in CSV and Parquet the nested fields are JSON strings, so
every column has one plain type (the same frame the MLflow pyfunc returns).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def _format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"expected a file ending in one of {sorted(FORMATS)}, found {path.name!r}")
    return fmt


INPUT_COLUMNS = ("id", "question", "answer")
PARSE_ERROR = "_error"  # set on a row that could not be read; the scorer gives it an error row


def _jsonl_row(line: str, line_no: int) -> dict:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as err:
        return {"answer": None, PARSE_ERROR: f"line {line_no}: expected a JSON object, found invalid JSON ({err.msg})"}
    if not isinstance(row, dict):
        return {"answer": None, PARSE_ERROR: f"line {line_no}: expected a JSON object, found {type(row).__name__}"}
    return row


def _no_answer_column(path: Path, found) -> ValueError:
    return ValueError(f"{path}: expected an 'answer' column (optional 'id', 'question'), found {sorted(found)}")


def iter_row_chunks(path: str | Path, chunk_rows: int = 512, start: int = 0) -> Iterator[list[dict]]:
    """Input rows in lists of at most ``chunk_rows``, in file order, from row ``start`` on; memory stays one chunk.

    JSONL is read line by line (blank lines are not rows; a line that is not a JSON
    object becomes a row marked ``PARSE_ERROR``), CSV in pandas chunks, Parquet with
    pyarrow's ``iter_batches`` (only the id, question and answer columns).
    """
    path = Path(path)
    fmt = _format(path)
    if not path.exists():
        raise FileNotFoundError(f"expected an input file at {path}, found nothing there")
    if chunk_rows < 1:
        raise ValueError(f"expected chunk_rows >= 1, found {chunk_rows}")
    if fmt == "jsonl":
        chunks = _jsonl_chunks(path, chunk_rows)
    elif fmt == "csv":
        chunks = _csv_chunks(path, chunk_rows)
    else:
        chunks = _parquet_chunks(path, chunk_rows)
    seen = 0
    for chunk in chunks:
        if start >= seen + len(chunk):
            seen += len(chunk)
            continue
        chunk, seen = chunk[max(start - seen, 0):], seen + len(chunk)
        yield chunk


def _jsonl_chunks(path: Path, chunk_rows: int) -> Iterator[list[dict]]:
    chunk: list[dict] = []
    checked = False
    with path.open(encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            chunk.append(_jsonl_row(line, line_no))
            if len(chunk) == chunk_rows:
                if not checked and not any("answer" in r for r in chunk):
                    raise _no_answer_column(path, chunk[0])
                checked = True
                yield chunk
                chunk = []
    if chunk:
        if not checked and not any("answer" in r for r in chunk):
            raise _no_answer_column(path, chunk[0])
        yield chunk


def _csv_chunks(path: Path, chunk_rows: int) -> Iterator[list[dict]]:
    try:
        reader = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[], chunksize=chunk_rows)
    except pd.errors.EmptyDataError:
        return
    with reader:
        for frame in reader:
            if "answer" not in frame.columns:
                raise _no_answer_column(path, frame.columns)
            yield frame.to_dict("records")


def _parquet_chunks(path: Path, chunk_rows: int) -> Iterator[list[dict]]:
    import pyarrow.parquet as pq

    with pq.ParquetFile(path) as parquet:
        names = parquet.schema_arrow.names
        if "answer" not in names:
            raise _no_answer_column(path, names)
        columns = [c for c in INPUT_COLUMNS if c in names]
        for batch in parquet.iter_batches(batch_size=chunk_rows, columns=columns):
            yield batch.to_pylist()


def read_rows(path: str | Path) -> list[dict]:
    """Every input row of a file at once (for small files; batch scoring streams ``iter_row_chunks``)."""
    return [row for chunk in iter_row_chunks(path) for row in chunk]


OUTPUT_COLUMNS = ("id", "sections", "result_quality", "missing_sections", "ownership", "story", "feedback", "model",
                  "score_rule", "schema_version", "error")
NESTED_COLUMNS = ("sections", "result_quality", "missing_sections", "ownership", "story", "feedback")  # JSON strings in CSV and Parquet


def rows_to_frame(rows: list[dict]) -> pd.DataFrame:
    """Scorer rows -> DataFrame of strings; nested fields as JSON so every column has one plain type."""
    columns = {name: [json.dumps(r[name], ensure_ascii=False) for r in rows] for name in NESTED_COLUMNS}
    columns["id"] = [str(r["id"]) for r in rows]
    for name in ("model", "score_rule", "schema_version", "error"):
        columns[name] = [r[name] or "" for r in rows]
    return pd.DataFrame(columns, columns=list(OUTPUT_COLUMNS))


def frame_to_rows(frame: pd.DataFrame) -> list[dict]:
    """The inverse of ``rows_to_frame``: flat rows (CSV, Parquet, the REST and Spark outputs) back to scorer rows."""
    rows = []
    for record in frame.to_dict("records"):
        row = {name: record[name] for name in OUTPUT_COLUMNS}
        for name in NESTED_COLUMNS:
            row[name] = json.loads(row[name])
        row["error"] = row["error"] or None
        rows.append(row)
    return rows


def output_table(rows: list[dict]):
    """Scorer rows as an Arrow table of string columns with a fixed schema (no pandas metadata: chunks concatenate)."""
    import pyarrow as pa

    frame = rows_to_frame(rows)
    return pa.table({name: pa.array(frame[name].tolist(), pa.string()) for name in OUTPUT_COLUMNS})


def encode_rows(rows: list[dict], fmt: str, header: bool) -> bytes:
    """JSONL or CSV bytes for a chunk of scorer rows; ``header``: start a CSV file with the column names."""
    if fmt == "jsonl":
        return "".join(json.dumps(row, ensure_ascii=False, default=str) + "\n" for row in rows).encode("utf-8")
    if fmt == "csv":
        return rows_to_frame(rows).to_csv(index=False, header=header, lineterminator="\n").encode("utf-8")
    raise ValueError(f"expected jsonl or csv, found {fmt!r} (Parquet is written as a table)")


def write_rows(rows: list[dict], path: str | Path) -> None:
    path = Path(path)
    fmt = _format(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(output_table(rows), path)
    else:
        path.write_bytes(encode_rows(rows, fmt, header=True))
