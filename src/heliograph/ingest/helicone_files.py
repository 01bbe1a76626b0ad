"""Reading Helicone export files, JSON lines or CSV with a header, streamed a row at a time with
its line number and how far into the file reading has come. A row that cannot be read (too long,
not JSON, wrong field count, not UTF-8) is yielded with its reason, to be counted; only a file that
is not such an export at all (`WrongLayout`) stops the reading."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from heliograph.domain.errors import InvalidInput
from heliograph.ingest.helicone_rows import KEY_COLUMNS, REQUEST_COLUMNS

MAX_ROW_BYTES = 256 * 1024 * 1024  # a line or CSV record; longer ones are refused
_UNDECODABLE = re.compile("[\udc80-\udcff]")  # what `surrogateescape` made of bytes not UTF-8


class WrongLayout(InvalidInput):
    """The file is not the export it should be (missing columns, not JSON lines or CSV)."""


@dataclass(frozen=True, slots=True)
class SourceRow:
    """One row of a file: its values, or the reason it cannot be read; where it starts (line)
    and how far into the file reading has come (bytes)."""

    line: int
    values: dict[str, Any] | None
    problem: str = ""
    offset: int = 0


def request_rows(path: Path, fmt: str | None = None) -> Iterator[SourceRow]:
    """The rows of a `request_response_rmt` export (format by extension unless given)."""
    return read_rows(path, fmt or format_of(path), REQUEST_COLUMNS)


def key_rows(path: Path) -> Iterator[SourceRow]:
    """The rows of a `helicone_api_keys` export (CSV, or JSON lines by extension)."""
    return read_rows(path, format_of(path), KEY_COLUMNS)


def read_rows(path: Path, fmt: str, required: tuple[str, ...]) -> Iterator[SourceRow]:
    """The rows of a JSON-lines (`jsonl`) or CSV-with-header (`csv`) file; `WrongLayout` when
    the header (or the first object) lacks a `required` column."""
    return _csv_rows(path, required) if fmt == "csv" else _json_rows(path, required)


def format_of(path: Path) -> str:
    """`csv` or `jsonl`, by the file's extension."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".json", ".ndjson"):
        return "jsonl"
    raise WrongLayout(f"cannot tell the format of {path.name}: name it .jsonl or .csv, or --format")


def _json_rows(path: Path, required: tuple[str, ...]) -> Iterator[SourceRow]:
    checked = False
    with path.open("rb") as file:
        for number, line, offset in _lines(file):
            if line is None:
                yield SourceRow(number, None, f"longer than {MAX_ROW_BYTES} bytes", offset)
                continue
            if not line.strip():
                continue
            try:
                values = orjson.loads(line)
            except orjson.JSONDecodeError as error:
                yield SourceRow(number, None, f"not JSON ({error})", offset)
                continue
            if not isinstance(values, dict):
                yield SourceRow(number, None, "not a JSON object", offset)
                continue
            if not checked:
                _check_columns(list(values), required)
                checked = True
            yield SourceRow(number, values, offset=offset)


def _lines(file: BinaryIO) -> Iterator[tuple[int, bytes | None, int]]:
    """(line number, line or None when too long, bytes read so far), never holding more than
    one line of at most `MAX_ROW_BYTES`."""
    number = offset = 0
    while line := file.readline(MAX_ROW_BYTES + 1):
        number += 1
        offset += len(line)
        if len(line) > MAX_ROW_BYTES and not line.endswith(b"\n"):
            while (rest := file.readline(1024 * 1024)) and not rest.endswith(b"\n"):
                offset += len(rest)
            offset += len(rest)
            yield number, None, offset
            continue
        yield number, line, offset


def _csv_rows(path: Path, required: tuple[str, ...]) -> Iterator[SourceRow]:
    csv.field_size_limit(MAX_ROW_BYTES)
    # Bytes that are not UTF-8 become lone surrogates here, so the row naming them is refused
    # rather than the whole file.
    with path.open("rb") as raw:
        file = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline="")
        reader = csv.reader(file)
        try:
            header = next(reader, None)
        except csv.Error as error:
            raise WrongLayout(f"not CSV: {error}") from None
        if header is None:
            raise WrongLayout("the file is empty")
        _check_columns(header, required)
        while True:
            line = reader.line_num + 1
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                yield SourceRow(line, None, f"unreadable CSV ({error})", raw.tell())
                continue
            yield _csv_row(line, header, fields, raw.tell())


def _csv_row(line: int, header: list[str], fields: list[str], offset: int) -> SourceRow:
    if len(fields) != len(header):
        problem = f"{len(fields)} fields where the header has {len(header)}"
        return SourceRow(line, None, problem, offset)
    if any(map(_UNDECODABLE.search, fields)):
        return SourceRow(line, None, "not valid UTF-8", offset)
    return SourceRow(line, dict(zip(header, fields, strict=True)), offset=offset)


def _check_columns(columns: list[str], required: tuple[str, ...]) -> None:
    missing = [name for name in required if name not in columns]
    if missing:
        found = ", ".join(c[:40] for c in columns[:8]) + (", ..." if len(columns) > 8 else "")
        raise WrongLayout(
            f"not a Helicone export: no column {', '.join(missing)} (the file has: {found})"
        )
