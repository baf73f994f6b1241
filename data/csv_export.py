"""CSV exports that a spreadsheet cannot run: a cell that would start a formula gets a ``'``.

Excel and WPS treat a cell beginning with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return as a formula, so a resident named ``=HYPERLINK(...)`` would come alive in a
supervisor's spreadsheet (CSV or formula injection). Every export writes through
``writer`` or ``dict_writer`` here, which put a single quote before such text (OWASP's
advice). Numbers are never touched: pass a figure as an ``int``/``float``, not as text, and a
negative one stays a number.
"""

from __future__ import annotations

import csv
from collections.abc import Collection, Iterable, Mapping
from numbers import Number
from typing import Any, TextIO

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> object:
    """One cell as written: numbers as they are, None as "", formula-like text behind ``'``."""
    if value is None:
        return ""
    if isinstance(value, Number):
        return value
    # Anything else is written as its text, so it is checked as text.
    text = value if isinstance(value, str) else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


class Writer:
    """A ``csv.writer`` that makes every cell safe before writing it."""

    def __init__(self, out: TextIO, **kw: Any) -> None:
        self._csv = csv.writer(out, **kw)

    def writerow(self, row: Iterable[object]) -> Any:
        """Write one row of safe cells."""
        return self._csv.writerow([safe_cell(value) for value in row])

    def writerows(self, rows: Iterable[Iterable[object]]) -> None:
        """Write each row of safe cells."""
        for row in rows:
            self.writerow(row)


class DictWriter(csv.DictWriter):
    """A ``csv.DictWriter`` that makes every cell (``restval`` too) safe before writing it."""

    def __init__(self, out: TextIO, fieldnames: Collection[str], **kw: Any) -> None:
        super().__init__(out, fieldnames, **kw)
        self.restval = safe_cell(self.restval)

    def writerow(self, rowdict: Mapping[str, object]) -> Any:
        """Write one row of safe cells."""
        return super().writerow({key: safe_cell(value) for key, value in rowdict.items()})

    def writerows(self, rowdicts: Iterable[Mapping[str, object]]) -> None:
        """Write each row of safe cells (``csv.DictWriter.writerows`` skips ``writerow``)."""
        for rowdict in rowdicts:
            self.writerow(rowdict)


def writer(out: TextIO, **kw: Any) -> Writer:
    """A safe ``csv.writer`` on ``out``."""
    return Writer(out, **kw)


def dict_writer(out: TextIO, fieldnames: Collection[str], **kw: Any) -> DictWriter:
    """A safe ``csv.DictWriter`` on ``out``."""
    return DictWriter(out, fieldnames, **kw)
