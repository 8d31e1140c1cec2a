"""Streams CSV rows with exact file/row/column error reporting.

Rows are numbered by the physical line they start on (the header is row 1);
``lines`` after each row is how many physical lines it spanned (a quoted field
with newlines, or an unterminated quote that runs to the end of the file).
Bytes that are not UTF-8, an unterminated quote, or a row with too few or too
many fields become a ``DataError`` naming the file, row and column; the caller
either raises it or quarantines the row.

The file is sniffed first: gzip and bz2 files (by their magic bytes, whatever
their name) are decompressed on the fly; a UTF-8 byte order mark is dropped;
Parquet, ZIP, xz, zstd, UTF-16 and other binary files (NUL bytes), and files with
CR-only line endings, are refused with a message naming what the file is.

Example:
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "x.csv")
    >>> _ = open(path, "w").write("a,b\\n1,2\\n")
    >>> reader = CsvReader(path)
    >>> reader.header, list(reader.rows())
    (['a', 'b'], [(2, ['1', '2'])])
"""

from __future__ import annotations

import bz2
import collections
import csv
import gzip
import re
import zlib
from collections.abc import Iterator
from typing import IO

from components.base import DataError

_SURROGATE = re.compile("[\udc80-\udcff]")
FIELD_LIMIT = 1 << 24
csv.field_size_limit(FIELD_LIMIT)
SNIFF_BYTES = 1 << 16
BOM = b"\xef\xbb\xbf"
_NOT_CSV = (  # magic bytes -> (what the file is, how to fix)
    (b"PAR1", "a Parquet file", "use format='parquet' (YAML: data.format: parquet), or pass a CSV file."),
    (b"PK\x03\x04", "a ZIP archive (or an .xlsx workbook)", "unzip it or export the sheet as CSV."),
    (b"\xfd7zXZ\x00", "an xz-compressed file", "decompress it (xz -d), or compress it with gzip or bz2, "
                                                 "which are read directly."),
    (b"\x28\xb5\x2f\xfd", "a zstd-compressed file", "decompress it (zstd -d), or compress it with gzip or "
                                                    "bz2, which are read directly."),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive", "extract the CSV from it."),
    (b"\xff\xfe", "UTF-16 text", "re-encode it as UTF-8 (e.g. iconv -f utf-16 -t utf-8)."),
    (b"\xfe\xff", "UTF-16 text", "re-encode it as UTF-8 (e.g. iconv -f utf-16 -t utf-8)."),
)
_DECOMPRESS_ERRORS = (OSError, EOFError, zlib.error)


def _open(path: str) -> tuple[IO[bytes], str | None]:
    """The file as a byte stream (decompressed when gzip or bz2), and the compression's name."""
    try:
        raw = open(path, "rb")  # noqa: SIM115 - handed to the caller
    except OSError as e:
        raise DataError(path, None, None, f"cannot be opened ({type(e).__name__}: {e.strerror}).",
                        "check the path and its permissions (the file and every directory above it "
                        "must be readable by this user).") from None
    magic = raw.read(3)
    if magic[:2] == b"\x1f\x8b":
        raw.close()
        return gzip.open(path, "rb"), "gzip"
    if magic == b"BZh":
        raw.close()
        return bz2.open(path, "rb"), "bz2"
    raw.seek(0)
    return raw, None


def _sniff(path: str, head: bytes, compression: str | None) -> None:
    """Raises a DataError naming the format when ``head`` (the first bytes) is not CSV text."""
    packed = f"{compression}-compressed " if compression else ""
    for magic, what, fix in _NOT_CSV:
        if head.startswith(magic):
            raise DataError(path, None, None, f"looks like {packed}{what}, not CSV text.", fix)
    if b"\x00" in head:
        raise DataError(path, None, None,
                        f"looks like a {packed}binary file (it has NUL bytes), not CSV text.",
                        "pass a CSV file; for TFRecord files use format='tfrecord', for Parquet "
                        "format='parquet'.")
    if b"\r" in head and b"\n" not in head:
        raise DataError(path, None, None, "the file uses CR-only (old Mac) line endings.",
                        "convert to LF or CRLF (e.g. tr '\\r' '\\n' < in.csv > out.csv).")


class CsvReader:
    """Reads one CSV file: ``header`` (checked), then ``rows()`` yielding (row, fields) or DataError.

    Raises:
        DataError: the file cannot be opened, is not CSV text, is empty, has no data rows,
            or has a bad header.
    """

    def __init__(self, path: str):
        self.path = path
        self.lines = 0  # physical lines of the row last yielded by rows()
        self._file, self._compression = _open(path)
        try:
            head = self._file.read(SNIFF_BYTES)
            if not head:
                raise DataError(path, None, None, "the file is empty; expected a header row and data rows.",
                                "remove the file or write its data.")
            _sniff(path, head, self._compression)
            self._file.seek(len(BOM) if head.startswith(BOM) else 0)
            self._lines = (raw.decode("utf-8", errors="surrogateescape") for raw in self._file)
            self._reader = csv.reader(self._lines, strict=True)
            try:
                header = next(self._reader)
            except (csv.Error, StopIteration) as e:
                raise DataError(path, 1, None, f"the header row does not parse ({e}).",
                                "write a comma-separated header of column names.") from None
            except _DECOMPRESS_ERRORS as e:
                raise self._corrupt(e, 1) from None
        except _DECOMPRESS_ERRORS as e:
            self._file.close()
            raise self._corrupt(e, None) from None
        except BaseException:
            self._file.close()
            raise
        bad = [h for h in header if _SURROGATE.search(h)]
        if bad or not header or any(not h.strip() for h in header):
            self._file.close()
            raise DataError(path, 1, None, f"the header {header!r} has an empty or non-UTF-8 column name.",
                            "name every column in UTF-8.")
        counts = collections.Counter(header)
        duplicates = sorted(h for h, n in counts.items() if n > 1)
        if duplicates:
            self._file.close()
            raise DataError(path, 1, duplicates[0], f"the header names column {duplicates[0]!r} twice.",
                            "rename or drop one of them.")
        self.header = [h.strip() for h in header]

    def _corrupt(self, error: BaseException, row: int | None) -> DataError:
        what = f"the {self._compression} data" if self._compression else "the file"
        return DataError(self.path, row, None, f"{what} cannot be read: it is corrupt or truncated ({error}).",
                         "re-create or re-download the file.")

    def rows(self) -> Iterator[tuple[int, list[str] | DataError]]:
        """Yields (row number, fields) or (row number, DataError) per data row; closes the file.

        After each yield, ``self.lines`` is the number of physical lines that row spanned.
        """
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
                    self.lines = max(end - start + 1, 1)
                    if "end of data" in str(e):
                        problem = ("an unterminated quote: the quoted field runs to the end of the file "
                                   f"(lines {start}-{end})")
                    elif "field limit" in str(e):
                        problem = (f"a field longer than the {FIELD_LIMIT >> 20} MiB limit (lines {start}-{end}; "
                                   "an unclosed quote makes a field run on)")
                    else:
                        problem = f"malformed CSV ({e})"
                    yield start, DataError(self.path, start, None, problem + ".",
                                           "close the quote or escape it by doubling it (\"\").")
                    continue
                except _DECOMPRESS_ERRORS as e:
                    raise self._corrupt(e, start) from None
                if not fields:  # a blank line is not a row
                    continue
                any_row = True
                self.lines = self._reader.line_num - start + 1
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
