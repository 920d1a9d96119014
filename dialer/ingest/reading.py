"""Reading import files: encoding detection, CSV parsing with physical line numbers, mappings.

Encodings: a UTF-8 byte-order mark means UTF-8; otherwise the file is decoded as strict UTF-8,
and if any byte is not valid UTF-8 the whole file is read as Windows-1252 (what Excel writes for
Spanish names on US Windows). Those are the only encodings seen in practice exports; any other
is given with ``--encoding``.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from dialer.errors import ConfigError, InputFileError
from dialer.ingest.mapping import Mapping

UTF8_BOM = b"\xef\xbb\xbf"
_DELIMITERS = (",", ";", "\t", "|")


@dataclass
class RawTable:
    """A parsed import file: original cells, canonical cells, and where each record starts."""

    path: Path
    encoding: str
    original_columns: list[str]
    original: pd.DataFrame  # cells as written, original column names (for the rejects file)
    cells: pd.DataFrame  # stripped cells under canonical names, mapped values applied
    lines: np.ndarray  # 1-based physical line where each record starts
    shape_errors: pd.Series  # per record: "" or a message about its field count


def detect_encoding(path: Path) -> str:
    """``utf-8-sig`` with a BOM, ``utf-8`` when every byte decodes, else ``cp1252``."""
    with path.open("rb") as handle:
        if handle.read(3) == UTF8_BOM:
            return "utf-8-sig"
        handle.seek(0)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
        try:
            for block in iter(lambda: handle.read(1 << 20), b""):
                decoder.decode(block)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "cp1252"
    return "utf-8"


def _check_encoding(name: str) -> str:
    try:
        return codecs.lookup(name).name
    except LookupError as exc:
        raise ConfigError(f"Unknown encoding {name!r} (try utf-8, utf-8-sig or cp1252)") from exc


def _delimiter(header_line: str) -> str:
    counts = {d: header_line.count(d) for d in _DELIMITERS}
    best = max(_DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def _records(path: Path, encoding: str) -> Iterator[tuple[int, list[str]]]:
    with path.open("r", encoding=encoding, newline="") as handle:
        first = handle.readline()
        handle.seek(0)
        reader = csv.reader(handle, delimiter=_delimiter(first), strict=False)
        last_line = 0
        for record in reader:
            start = last_line + 1
            last_line = reader.line_num
            if record and any(cell.strip() for cell in record):
                yield start, record


def read_records(path: Path, encoding: str) -> tuple[list[str], list[int], list[list[str]]]:
    """Header, start lines and records of a CSV file; blank lines are skipped."""
    try:
        records = _records(path, encoding)
        first = next(records, None)
        if first is None:
            raise InputFileError(f"{path}: the file is empty (expected a header row)")
        header = [name.lstrip("\ufeff").strip() for name in first[1]]
        lines: list[int] = []
        rows: list[list[str]] = []
        for line, record in records:
            lines.append(line)
            rows.append(record)
    except UnicodeDecodeError as exc:
        raise InputFileError(
            f"{path}: not valid {encoding} text at byte {exc.start}; "
            "pass the right --encoding (utf-8, utf-8-sig or cp1252)"
        ) from exc
    except OSError as exc:
        raise InputFileError(f"{path}: cannot read the file: {exc.strerror}") from exc
    return header, lines, rows


def _fit_rows(rows: list[list[str]], width: int) -> tuple[list[list[str]], list[str]]:
    fitted: list[list[str]] = []
    errors: list[str] = []
    for row in rows:
        if len(row) > width and any(cell.strip() for cell in row[width:]):
            errors.append(f"record has {len(row)} fields but the header has {width}")
        else:
            errors.append("")
        fitted.append((row + [""] * (width - len(row)))[:width])
    return fitted, errors


def read_table(path: Path, mapping: Mapping | None = None, encoding: str | None = None) -> RawTable:
    """Read an import file into original and canonical cells, applying ``mapping``."""
    if not path.is_file():
        raise InputFileError(f"{path}: no such file")
    encoding = _check_encoding(encoding) if encoding else detect_encoding(path)
    header, lines, rows = read_records(path, encoding)
    seen: set[str] = set()
    for name in header:
        if name.lower() in seen:
            raise InputFileError(f"{path}: the header names column {name!r} twice")
        seen.add(name.lower())
    fitted, shape_errors = _fit_rows(rows, len(header))
    original = pd.DataFrame(fitted, columns=header, dtype=object)
    cells = canonical_cells(original, mapping or Mapping())
    return RawTable(
        path=path,
        encoding=encoding,
        original_columns=header,
        original=original,
        cells=cells,
        lines=np.asarray(lines, dtype=np.int64),
        shape_errors=pd.Series(shape_errors, dtype=object),
    )


def canonical_cells(original: pd.DataFrame, mapping: Mapping) -> pd.DataFrame:
    """Rename columns to canonical names, strip cells, apply value maps and defaults."""
    renames = {source.strip().lower(): target for source, target in mapping.columns.items()}
    cells = pd.DataFrame(index=original.index)
    for column in original.columns:
        target = renames.get(column.strip().lower(), column.strip().lower())
        if target in cells.columns:
            continue
        cells[target] = original[column].astype(object).str.strip()
    for column, value in mapping.defaults.items():
        if column not in cells.columns:
            cells[column] = value
    for column, mapped in mapping.values.items():
        if column in cells.columns:
            lookup = {k.strip().lower(): v for k, v in mapped.items()}
            lowered = cells[column].str.lower()
            hit = lowered.isin(lookup.keys())
            cells.loc[hit, column] = lowered[hit].map(lookup)
    return cells
