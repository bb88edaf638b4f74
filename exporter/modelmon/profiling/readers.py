"""Streaming readers for CSV, JSON Lines and (with pyarrow) Parquet files.

Each reader yields :class:`Chunk` objects of at most ``chunk_rows`` rows, so files of
any size are read in bounded memory. Errors name the file, the line and the column.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Text that counts as a missing value in CSV files.
MISSING_TOKENS = frozenset({"", "NA", "N/A", "NaN", "nan", "null", "NULL", "None", "none"})


class DataError(ValueError):
    """An input file that cannot be read; the message names file, line and column."""


@dataclass
class Chunk:
    """Up to ``chunk_rows`` rows, column by column."""

    path: str
    columns: dict[str, list[Any]]
    rows: int
    first_line: int  # line number (1-based) of the chunk's first row
    bytes_read: int  # bytes of the file consumed so far


def iter_chunks(path: str | Path, chunk_rows: int = 1_000) -> Iterator[Chunk]:
    """Chunks of a CSV, JSON Lines or Parquet file, chosen by its extension."""
    name = str(path)
    lower = name.lower()
    if not os.path.exists(name):
        raise DataError(f"{name}: no such file")
    if lower.endswith((".jsonl", ".ndjson", ".json")):
        return _jsonl_chunks(name, chunk_rows)
    if lower.endswith(".parquet"):
        return _parquet_chunks(name, chunk_rows)
    return _csv_chunks(name, chunk_rows)


def _csv_chunks(path: str, chunk_rows: int) -> Iterator[Chunk]:
    with open(path, "rb") as raw, io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        try:
            header = next(reader)
        except StopIteration:
            raise DataError(f"{path}: line 1: expected a header row, the file is empty") from None
        except (csv.Error, UnicodeDecodeError) as exc:
            raise DataError(f"{path}: line 1: {exc}") from None
        if len(set(header)) != len(header):
            dupes = sorted({h for h in header if header.count(h) > 1})
            raise DataError(f"{path}: line 1: duplicate column names {dupes}")
        width = len(header)
        while True:
            first = reader.line_num + 1
            rows: list[list[str]] = []
            try:
                for row in reader:
                    if len(row) != width:
                        if not row:
                            continue
                        raise DataError(
                            f"{path}: line {reader.line_num}: expected {width} fields "
                            f"(the header's), got {len(row)}"
                        )
                    rows.append(row)
                    if len(rows) >= chunk_rows:
                        break
            except (csv.Error, UnicodeDecodeError) as exc:
                raise DataError(f"{path}: line {reader.line_num + 1}: {exc}") from None
            if not rows:
                return
            columns = {
                name: list(values)
                for name, values in zip(header, zip(*rows, strict=True), strict=True)
            }
            # The text layer refuses tell() while csv iterates; the byte position of the
            # buffer is close enough for progress reports.
            yield Chunk(path, columns, len(rows), first, raw.tell())


def _flatten(record: dict[str, Any]) -> dict[str, Any]:
    """Prediction-record shaped objects ({"features": {...}, ...}) become flat rows."""
    features = record.get("features")
    if not isinstance(features, dict):
        return record
    flat = {k: v for k, v in record.items() if k not in ("features", "scores")}
    flat.update(features)
    scores = record.get("scores")
    if isinstance(scores, dict):
        flat.update({f"score_{k}": v for k, v in scores.items()})
    return flat


def _jsonl_chunks(path: str, chunk_rows: int) -> Iterator[Chunk]:
    names: dict[str, None] = {}
    with open(path, "rb") as handle:
        line_no = 0
        while True:
            records: list[dict[str, Any]] = []
            first = line_no + 1
            for raw in handle:
                line_no += 1
                if not raw.strip():
                    continue
                try:
                    obj = json.loads(raw)
                except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                    raise DataError(f"{path}: line {line_no}: not valid JSON: {exc}") from None
                if not isinstance(obj, dict):
                    raise DataError(
                        f"{path}: line {line_no}: expected a JSON object, got {type(obj).__name__}"
                    )
                row = _flatten(obj)
                names.update(dict.fromkeys(row))
                records.append(row)
                if len(records) >= chunk_rows:
                    break
            if not records:
                return
            columns = {n: [r.get(n) for r in records] for n in names}
            yield Chunk(path, columns, len(records), first, handle.tell())


def _parquet_chunks(path: str, chunk_rows: int) -> Iterator[Chunk]:
    try:
        import pyarrow.parquet as pq  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        raise DataError(
            f"{path}: reading Parquet needs pyarrow: pip install 'modelmon[parquet]'"
        ) from None
    handle = pq.ParquetFile(path)
    line = 1
    for batch in handle.iter_batches(batch_size=chunk_rows):
        columns = {name: batch.column(name).to_pylist() for name in batch.schema.names}
        yield Chunk(path, columns, batch.num_rows, line, 0)
        line += batch.num_rows
