"""Streams CSV rows with exact file/row/column error reporting.

Rows are numbered by the physical line they start on (the header is row 1).
Bytes that are not UTF-8, an unterminated quote, or a row with too few or too
many fields become a ``DataError`` naming the file, row and column; the caller
either raises it or quarantines the row.

Example:
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "x.csv")
    >>> _ = open(path, "w").write("a,b\\n1,2\\n")
    >>> reader = CsvReader(path)
    >>> reader.header, list(reader.rows())
    (['a', 'b'], [(2, ['1', '2'])])
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator

from components.base import DataError

_SURROGATE = re.compile("[\udc80-\udcff]")
csv.field_size_limit(1 << 24)


class CsvReader:
    """Reads one CSV file: ``header`` (checked), then ``rows()`` yielding (row, fields) or DataError.

    Raises:
        DataError: the file is empty, has no data rows, or a bad header.
    """

    def __init__(self, path: str):
        self.path = path
        self._file = open(path, "rb")  # noqa: SIM115 - closed by rows()
        first = self._file.read(1)
        if not first:
            self._file.close()
            raise DataError(path, None, None, "the file is empty; expected a header row and data rows.",
                            "remove the file or write its data.")
        self._file.seek(0)
        self._lines = (raw.decode("utf-8", errors="surrogateescape") for raw in self._file)
        self._reader = csv.reader(self._lines, strict=True)
        try:
            header = next(self._reader)
        except (csv.Error, StopIteration) as e:
            self._file.close()
            raise DataError(path, 1, None, f"the header row does not parse ({e}).",
                            "write a comma-separated header of column names.") from None
        bad = [h for h in header if _SURROGATE.search(h)]
        if bad or not header or any(not h.strip() for h in header):
            self._file.close()
            raise DataError(path, 1, None, f"the header {header!r} has an empty or non-UTF-8 column name.",
                            "name every column in UTF-8.")
        duplicates = sorted({h for h in header if header.count(h) > 1})
        if duplicates:
            self._file.close()
            raise DataError(path, 1, duplicates[0], f"the header names column {duplicates[0]!r} twice.",
                            "rename or drop one of them.")
        self.header = [h.strip() for h in header]

    def rows(self) -> Iterator[tuple[int, list[str] | DataError]]:
        """Yields (row number, fields) or (row number, DataError) per data row; closes the file."""
        width = len(self.header)
        any_row = False
        try:
            while True:
                start = self._reader.line_num + 1
                try:
                    fields = next(self._reader)
                except StopIteration:
                    break
                except csv.Error as e:
                    any_row = True
                    end = self._reader.line_num
                    problem = ("an unterminated quote: the quoted field runs to the end of the file "
                               f"(lines {start}-{end})" if "end of data" in str(e) else f"malformed CSV ({e})")
                    yield start, DataError(self.path, start, None, problem + ".",
                                           "close the quote or escape it by doubling it (\"\").")
                    continue
                if not fields:  # a blank line is not a row
                    continue
                any_row = True
                for i, value in enumerate(fields):
                    if _SURROGATE.search(value):
                        column = self.header[i] if i < width else None
                        yield start, DataError(self.path, start, column,
                                               "has bytes that are not UTF-8.",
                                               "re-encode the file as UTF-8 (e.g. iconv -f latin1 -t utf-8).")
                        break
                else:
                    if len(fields) < width:
                        missing = self.header[len(fields)]
                        yield start, DataError(
                            self.path, start, missing,
                            f"has {len(fields)} fields; expected {width} (no value for column {missing!r}).",
                            "add the missing fields (empty is allowed: a,,b).")
                    elif len(fields) > width:
                        yield start, DataError(
                            self.path, start, None,
                            f"has {len(fields)} fields; expected {width} (an extra field after column "
                            f"{self.header[-1]!r}).", "remove the extra field or quote values holding commas.")
                    else:
                        yield start, fields
        finally:
            self._file.close()
        if not any_row:
            raise DataError(self.path, None, None, "has a header but no data rows.",
                            "remove the file or add rows.")
