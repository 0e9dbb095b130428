"""The input files of `mash-hub link`: read every row or say why not.

A council's list of children is messy: dates written the British way (14/03/2016), a row
with a field too many, a quote never closed. Read leniently, such a file links "fine" and a
data team trusts output that silently lost or mis-dated people (14/03/2016 read as the year
1403). So each row is either a record or a rejected row with its line number and the reason;
nothing is dropped unseen. Reasons name columns and rules, never a value: the rejects file
points back at the input, which already holds the values.

Dates of birth are ISO 8601 (YYYY-MM-DD) unless the caller gives a `strptime` format
(`%d/%m/%Y`); either way a date that does not exist, lies in the future or before 1900 is a
rejected row, not a guess.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from .linkage import CSV_COLUMNS, Record, record

ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
EARLIEST_BIRTH = date(1900, 1, 1)


class LinkInputError(Exception):
    """A whole input file cannot be used (unreadable, a required column missing). The
    message names the file and column, never a value."""


@dataclass(frozen=True)
class Reject:
    """A row not linked: where it is and why."""

    file: str
    line: int
    reason: str


@dataclass
class LinkFile:
    """What one input file gave: its records (in file order) and its rejected rows."""

    name: str
    records: list[Record] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return len(self.records) + len(self.rejects)


class RowError(ValueError):
    """The reason one row is rejected."""


def read(path: Path, date_format: str | None = None, today: date | None = None) -> LinkFile:
    """Every row of a CSV file with CSV_COLUMNS (empty = unknown; other columns ignored
    except `address`), as a record or a rejected row."""
    out = LinkFile(path.name)
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            rows = csv.reader(f, strict=True)
            try:
                header = next(rows)
            except StopIteration:
                raise LinkInputError(f"{path.name}: empty file") from None
            except csv.Error:
                raise LinkInputError(f"{path.name}: the header row is not readable CSV") from None
            missing = [c for c in CSV_COLUMNS if c not in header]
            if missing:
                raise LinkInputError(f"{path.name}: missing column(s) {', '.join(missing)}")
            seen: dict[str, int] = {}
            for line, row in _rows(rows, out):
                if not any(cell.strip() for cell in row):
                    continue  # a blank line is not a row
                try:
                    values = _values(header, row)
                    key = values["id"].strip()
                    if not key:
                        raise RowError("no id")
                    if key in seen:
                        raise RowError(f"id repeats the row on line {seen[key]}")
                    born = _birth(values["date_of_birth"], date_format, today or date.today())
                except RowError as exc:
                    out.rejects.append(Reject(path.name, line, str(exc)))
                    continue
                seen[key] = line
                out.records.append(
                    record(
                        key,
                        values["given_name"],
                        values["family_name"],
                        born,
                        values["sex"],
                        [values["postcode"]],
                        values["nhs_number"],
                        values.get("address"),
                    )
                )
    except (OSError, UnicodeDecodeError) as exc:
        raise LinkInputError(f"{path.name}: cannot be read ({type(exc).__name__})") from None
    return out


def _rows(reader: Any, out: LinkFile) -> Iterator[tuple[int, list[str]]]:
    """(first line of the row, its cells) from a `csv.reader`; a row it cannot read is
    rejected where it starts, and reading goes on after it."""
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            why = str(exc).lower()
            if "unexpected end of data" in why or "eof" in why:
                reason = "a quote opened on this line is never closed: the rest of the file"
                out.rejects.append(Reject(out.name, start, reason + " was not read"))
                return
            out.rejects.append(Reject(out.name, start, "broken quoting"))
            continue
        yield start, row


def _values(header: list[str], row: list[str]) -> dict[str, str]:
    if len(row) != len(header):
        raise RowError(f"{len(row)} fields where the header has {len(header)}")
    return dict(zip(header, row, strict=True))


def _birth(value: str, date_format: str | None, today: date) -> date | None:
    text = value.strip()
    if not text:
        return None
    if date_format is None:
        if not ISO_DATE.match(text):
            raise RowError(
                "date_of_birth is not YYYY-MM-DD (give --date-format for another, e.g. %d/%m/%Y)"
            )
        try:
            born = date.fromisoformat(text)
        except ValueError:
            raise RowError("date_of_birth is not a real date") from None
    else:
        try:
            born = datetime.strptime(text, date_format).date()
        except ValueError:
            raise RowError(f"date_of_birth does not match --date-format {date_format}") from None
    if born > today:
        raise RowError("date_of_birth is in the future")
    if born < EARLIEST_BIRTH:
        raise RowError("date_of_birth is before 1900")
    return born


def write_rejects(path: Path, rejects: list[Reject]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(("file", "line", "reason"))
        for r in rejects:
            w.writerow((r.file, r.line, r.reason))
