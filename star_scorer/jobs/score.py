"""Batch scoring at any size: ``python -m star_scorer.jobs.score --input IN --output OUT [--model M] [--resume]``.

JSONL, CSV or Parquet, chosen by extension. Input columns: ``answer`` (required),
``id`` and ``question`` (optional; id defaults to the row number). One output row
per input row, in input order; a row whose answer is empty, missing, not text or
unreadable gets ``error`` set and the run goes on.

The input is streamed in chunks of ``--chunk-rows`` rows (length-sorted inside a
chunk for the forward passes) and every chunk is committed before the next is read:

- JSONL and CSV are appended to ``OUT.partial``; after each chunk the file is synced
  and ``OUT.progress.json`` (rows done, bytes committed) is replaced atomically.
- Parquet chunks are committed as part files under ``OUT.parts/``; when every chunk is
  scored one ``ParquetWriter`` merges them, a row group per chunk, into ``OUT``.

Killed at any moment (``kill -9`` included), ``--resume`` truncates what was written
after the last commit and goes on from there; the finished file is byte-identical to
an uninterrupted run. ``OUT`` appears only when complete (an atomic rename). An existing
output, or an interrupted run's files, are refused without ``--resume``.
Imports nothing from training.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import logging
import os
import shutil
import sys
from pathlib import Path

from star_scorer.io import _format, encode_rows, iter_row_chunks, output_table

logger = logging.getLogger(__name__)

CHUNK_ROWS = 512  # rows scored and committed at a time: memory is flat in the input's size


class RunFiles:
    """Where a run to ``output`` keeps its uncommitted work and its progress."""

    def __init__(self, output: Path) -> None:
        self.output = output
        self.format = _format(output)
        self.partial = output.with_name(output.name + (".parts" if self.format == "parquet" else ".partial"))
        self.progress = output.with_name(output.name + ".progress.json")

    def interrupted(self) -> bool:
        return self.progress.exists() or self.partial.exists()

    def read_progress(self) -> dict | None:
        return json.loads(self.progress.read_text(encoding="utf-8")) if self.progress.exists() else None

    def commit(self, state: dict) -> None:
        """Replace the progress file atomically: a kill leaves the old one or the new one, never half of either."""
        tmp = self.progress.with_name(self.progress.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            json.dump(state, fh, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.progress)

    def part(self, index: int) -> Path:
        return self.partial / f"part-{index:06d}.parquet"

    def clear(self) -> None:
        if self.partial.is_dir():
            shutil.rmtree(self.partial)
        elif self.partial.exists():
            self.partial.unlink()
        self.progress.unlink(missing_ok=True)


def _fingerprint(input_path: Path, scorer, chunk_rows: int) -> dict:
    """What a resumed run must share with the run it continues."""
    return {"input": str(input_path.resolve()), "input_bytes": input_path.stat().st_size, "model": scorer.source,
            "precision": scorer.precision, "chunk_rows": chunk_rows}


def _check_resumable(state: dict, expected: dict, files: RunFiles) -> None:
    for key, value in expected.items():
        if state.get(key) != value:
            raise ValueError(
                f"--resume: expected the interrupted run's {key} {state.get(key)!r}, found {value!r}; "
                f"resume with the same input, model, --precision and --chunk-rows, or delete {files.partial} and {files.progress} to start again"
            )


def _sync(fh) -> None:
    fh.flush()
    os.fsync(fh.fileno())


def default_model() -> str | None:
    """What scores a dataset when no model is named: the version ``@champion`` points at when the tracking store has
    one (the model the promotion rule let through, pinned so that a moving alias cannot change it mid-run), else None:
    the newest folder under models/. A model just trained, but kept out by the rule, is not what scores by default."""
    from star_scorer.jobs.promote import CHAMPION, alias_version
    from star_scorer.paths import REGISTERED_MODEL_NAME
    from star_scorer.tracking import tracking_uri

    uri = tracking_uri()
    if uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///"):]).exists():
        return None  # no store yet, and opening one would create it
    version = alias_version(REGISTERED_MODEL_NAME, CHAMPION)
    return f"models:/{REGISTERED_MODEL_NAME}/{version.version}" if version is not None else None


def run(input_path: str, output_path: str, model: str | None = None, max_windows: int = 16, progress: bool = True,
        resume: bool = False, chunk_rows: int = CHUNK_ROWS, precision: str = "auto") -> dict:
    from tqdm import tqdm

    from star_scorer.scorer import StarScorer

    input_path, files = Path(input_path), RunFiles(Path(output_path))
    if files.output.exists():
        if not resume:
            raise FileExistsError(f"expected no file at {files.output} (scoring never overwrites one), found one: "
                                  "remove it, choose another --output, or pass --resume to finish an interrupted run")
        files.clear()  # a kill after the final rename leaves the output whole and only the bookkeeping behind
        logger.info("%s is complete; nothing to resume", files.output)
        return {"rows": None, "errors": None, "output": str(files.output), "resumed_from": None, "complete": True}
    if files.interrupted() and not resume:
        raise FileExistsError(f"expected no interrupted run for {files.output}, found {files.partial} / {files.progress}: "
                              "pass --resume to continue it, or delete them to start again")
    if not input_path.exists():
        raise FileNotFoundError(f"expected an input file at {input_path}, found nothing there")

    if model is None:
        model = default_model()
        logger.info("no model named: scoring with %s", model or "the newest folder under models/ (no @champion registered)")
    scorer = StarScorer.load(model, precision=precision)
    expected = _fingerprint(input_path, scorer, chunk_rows)
    state = files.read_progress() if resume else None
    if state is not None:
        _check_resumable(state, expected, files)
        logger.info("resuming %s from row %d", files.output, state["rows"])
    else:
        if resume:
            logger.info("--resume: no interrupted run for %s; starting from row 0", files.output)
        files.clear()
        state = expected | {"rows": 0, "errors": 0, "bytes": 0, "parts": 0}
    resumed_from = state["rows"]
    files.output.parent.mkdir(parents=True, exist_ok=True)

    with tqdm(desc="scoring", unit="rows", initial=state["rows"], file=sys.stderr, disable=not progress) as bar:
        if files.format == "parquet":
            _score_parquet_parts(scorer, input_path, files, state, chunk_rows, max_windows, bar)
        else:
            _score_appending(scorer, input_path, files, state, chunk_rows, max_windows, bar)
    logger.info("scored %d rows (%d with errors) -> %s", state["rows"], state["errors"], files.output)
    return {"rows": state["rows"], "errors": state["errors"], "output": str(files.output), "resumed_from": resumed_from,
            "complete": True}


def _release_memory() -> None:
    """Hand freed heap back to the system between chunks (glibc's malloc_trim; nothing elsewhere)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _score_chunks(scorer, input_path: Path, state: dict, chunk_rows: int, max_windows: int, bar):
    """Scored chunks from the first uncommitted row on."""
    for chunk in iter_row_chunks(input_path, chunk_rows, start=state["rows"]):
        yield scorer.score_rows(chunk, max_windows=max_windows, progress=bar, first_index=state["rows"])
        _release_memory()


def _score_appending(scorer, input_path: Path, files: RunFiles, state: dict, chunk_rows: int, max_windows: int, bar) -> None:
    """JSONL and CSV: append each chunk to ``OUT.partial``, sync, then commit its byte length."""
    mode = "r+b" if files.partial.exists() else "w+b"
    with files.partial.open(mode) as fh:
        fh.truncate(state["bytes"])  # drop whatever was written after the last commit
        fh.seek(state["bytes"])
        for rows in _score_chunks(scorer, input_path, state, chunk_rows, max_windows, bar):
            fh.write(encode_rows(rows, files.format, header=state["rows"] == 0))
            _sync(fh)
            state.update(rows=state["rows"] + len(rows), errors=state["errors"] + sum(1 for r in rows if r["error"]), bytes=fh.tell())
            files.commit(state)
        if state["rows"] == 0 and files.format == "csv":  # an empty input still gets a header
            fh.write(encode_rows([], "csv", header=True))
            _sync(fh)
    os.replace(files.partial, files.output)
    files.progress.unlink(missing_ok=True)


def _score_parquet_parts(scorer, input_path: Path, files: RunFiles, state: dict, chunk_rows: int, max_windows: int, bar) -> None:
    """Parquet: one committed part file per chunk, then one ParquetWriter over the parts, in order."""
    import pyarrow.parquet as pq

    files.partial.mkdir(exist_ok=True)
    for stale in files.partial.iterdir():  # parts written after the last commit, and half-written ones
        if not stale.name.endswith(".parquet") or int(stale.name[5:11]) >= state["parts"]:
            stale.unlink()
    for rows in _score_chunks(scorer, input_path, state, chunk_rows, max_windows, bar):
        part = files.part(state["parts"])
        tmp = part.with_name(part.name + ".tmp")
        pq.write_table(output_table(rows), tmp)
        with tmp.open("rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, part)
        state.update(rows=state["rows"] + len(rows), errors=state["errors"] + sum(1 for r in rows if r["error"]),
                     parts=state["parts"] + 1)
        files.commit(state)
    merged = files.output.with_name(files.output.name + ".merging")
    schema = output_table([]).schema
    with pq.ParquetWriter(merged, schema) as writer:
        for index in range(state["parts"]):
            writer.write_table(pq.read_table(files.part(index), schema=schema))
    os.replace(merged, files.output)
    files.clear()


def main(argv: list[str] | None = None) -> dict:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(description="Score a file of interview answers (JSONL, CSV or Parquet), streaming and resumable.")
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--model", default=None, help="model folder or models:/ URI (default: the registered @champion, else the newest folder under models/)")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run to the same --output from its last committed chunk")
    parser.add_argument("--chunk-rows", type=int, default=CHUNK_ROWS, help="rows read, scored and committed at a time")
    parser.add_argument("--max-windows", type=int, default=16, help="encoder windows per forward pass (an answer of up to 254 tokens is one window)")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"],
                        help="auto: bf16 weights where the CPU/GPU multiplies bf16 natively (same figures, about 2.4x faster), else fp32")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    return run(args.input, args.output, args.model, args.max_windows, not args.no_progress, args.resume, args.chunk_rows,
               args.precision)


if __name__ == "__main__":
    main()
