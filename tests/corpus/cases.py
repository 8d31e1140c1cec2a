"""The bad-input corpus: each case writes its small input at run time and states its outcome.

A case is one thing an operator's data can get wrong. Its documented outcome is one of:

* ``error``: the component refuses with one line that names the file (and the row and
  column where there is one) and says how to fix it; ``mention`` lists what it must say;
* ``quarantine``: the run goes on, the bad rows are set aside, and the counts balance
  (``rows_in == sum(row_counts) + quarantined``);
* ``ok``: the input is read as it should be (``rows`` rows, ``kinds`` column kinds);
* ``anomaly``: ExampleValidator, comparing a new span against the baseline span, reports
  the named anomaly (or, with ``anomaly=None``, none);
* ``label``: the Trainer's check before training, from StatisticsGen's statistics of the
  train split, refuses the label for a classifier (an ``error`` with ``mention``).

``docs/pipeline.md`` carries the same table; ``tests/corpus/test_corpus.py`` runs every case
and ``benchmarks/robustness.py`` counts them. Nothing here is larger than a few MB, and the
big inputs are generated, never stored.
"""

from __future__ import annotations

import bz2
import dataclasses
import gzip
import os
import random
from collections.abc import Callable

HEADER = "fare,tips,company,trip_miles"
COLUMNS = tuple(HEADER.split(","))


def rows(n: int, start: int = 0) -> list[str]:
    """``n`` good CSV lines of the standard four columns."""
    return [f"{10 + i % 40},{(i % 4) * 1.5},C{i % 5},{(i % 23) / 10}" for i in range(start, start + n)]


def csv(lines: list[str], header: str = HEADER, newline: str = "\n") -> bytes:
    return (newline.join([header, *lines]) + newline).encode()


@dataclasses.dataclass(frozen=True)
class Case:
    """One corpus case (see the module docstring for the outcomes)."""

    name: str
    category: str
    what: str  # What is wrong with the input, for the docs table.
    files: Callable[[], dict[str, bytes]]  # File name under input_base -> content.
    outcome: str  # "error", "quarantine", "ok", "anomaly" or "label"
    params: dict = dataclasses.field(default_factory=dict)  # ExampleGen keyword arguments.
    mention: tuple[str, ...] = ()  # For "error": substrings the message must hold.
    rows: int | None = None  # For "ok": rows written; for "quarantine": rows kept.
    quarantined: int | None = None  # For "quarantine".
    kinds: dict | None = None  # For "ok": column kinds expected (a subset).
    baseline: Callable[[], dict[str, bytes]] | None = None  # For "anomaly": span 1's files.
    anomaly: str | None = None  # For "anomaly": the anomaly expected (None: none).
    file_pattern: str = "data.csv"
    unprivileged: bool = False  # Run as an unprivileged user (permission cases).
    prepare: Callable[[str], None] | None = None  # Called with input_base after writing.

    @property
    def expected(self) -> str:
        """The documented outcome, in words."""
        if self.outcome == "error":
            return "one-line error naming " + ", ".join(self.mention)
        if self.outcome == "label":
            return "Trainer refuses before training, naming " + ", ".join(self.mention)
        if self.outcome == "quarantine":
            return f"quarantine: {self.quarantined} row(s) set aside, {self.rows} kept, counts balance"
        if self.outcome == "ok":
            return f"read: {self.rows} rows" + (f", kinds {self.kinds}" if self.kinds else "")
        return f"anomaly {self.anomaly}" if self.anomaly else "no anomaly"


def _one(content: bytes, name: str = "data.csv") -> Callable[[], dict[str, bytes]]:
    return lambda: {name: content}


def _lines_with(bad_at: dict[int, str], n: int = 60) -> list[str]:
    lines = rows(n)
    for index, line in bad_at.items():
        lines[index] = line
    return lines


def _huge_field() -> dict[str, bytes]:
    lines = rows(20)
    lines[7] = "17,1.5,C" + "x" * 5_000_000 + ",1.0"
    return {"data.csv": csv(lines)}


def _wide(n_columns: int = 2000) -> dict[str, bytes]:
    header = ",".join([HEADER] + [f"unused_{i}" for i in range(n_columns)])
    extra = "," + ",".join(["0"] * n_columns)
    return {"data.csv": csv([line + extra for line in rows(40)], header=header)}


def _parquet() -> dict[str, bytes]:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(pa.table({"fare": [1, 2, 3], "tips": [0.5, 1.0, 0.0]}), buffer)
    return {"data.csv": buffer.getvalue()}


def _random_binary() -> dict[str, bytes]:
    rng = random.Random(14)
    return {"data.csv": bytes(rng.randrange(256) for _ in range(4096))}


def _tfrecord() -> dict[str, bytes]:
    import tensorflow as tf

    import tempfile
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "x.tfrecord")
        with tf.io.TFRecordWriter(path) as w:
            for i in range(5):
                w.write(tf.train.Example(features=tf.train.Features(feature={
                    "fare": tf.train.Feature(int64_list=tf.train.Int64List(value=[i]))}))
                    .SerializeToString())
        with open(path, "rb") as f:
            return {"data.csv": f.read()}


def _span(n: int, *, start: int, miles: Callable[[int], float] | None = None,
          company: Callable[[int], str] | None = None) -> bytes:
    out = []
    for i in range(start, start + n):
        m = miles(i) if miles else round(((i * 7919) % 997) / 100, 2)
        c = company(i) if company else f"C{i % 5}"
        out.append(f"{10 + i % 40},{(i % 4) * 1.5},{c},{m}")
    return csv(out)


def _chmod(mode: int, relative: str = "") -> Callable[[str], None]:
    return lambda base: os.chmod(os.path.join(base, relative) if relative else base, mode)


QUARANTINE = {"bad_rows": "quarantine"}
LABELLED = {"derived_columns": {"big_tipper": "tips > 0.2 * fare"}}

CASES: tuple[Case, ...] = (
    # --- columns
    Case("missing_column", "columns", "a declared column is absent from the header",
         _one(csv(rows(30), header="fare,tips,company")), "error",
         params={"columns": COLUMNS}, mention=("data.csv", "row 1", "trip_miles", "How to fix")),
    Case("extra_column", "columns", "the header has a column the declaration does not",
         _one(csv([r + ",9" for r in rows(30)], header=HEADER + ",surprise")), "error",
         params={"columns": COLUMNS}, mention=("data.csv", "row 1", "surprise", "How to fix")),
    Case("renamed_label", "columns", "the label column was renamed",
         _one(csv(rows(30), header="fare,tip_amount,company,trip_miles")), "error",
         params={"label": "tips"}, mention=("data.csv", "tips", "How to fix")),
    Case("duplicated_column", "columns", "a column name appears twice in the header",
         _one(csv([r + ",C1" for r in rows(30)], header=HEADER + ",company")), "error",
         mention=("data.csv", "row 1", "company", "How to fix")),
    Case("derived_from_missing", "columns", "a derived column's expression names a missing column",
         _one(csv(rows(30), header="fare,tip_amount,company,trip_miles")), "error",
         params=LABELLED, mention=("data.csv", "tips", "How to fix")),
    # --- types
    Case("wrong_type_one_row_fail", "types", "one non-number in a declared float column",
         _one(csv(_lines_with({10: "20,abc,C1,1.0"}))), "error",
         params={"column_types": {"tips": "float"}}, mention=("data.csv", "row 12", "tips", "abc", "How to fix")),
    Case("wrong_type_one_row_quarantine", "types", "the same, with bad_rows=quarantine",
         _one(csv(_lines_with({10: "20,abc,C1,1.0"}))), "quarantine",
         params={"column_types": {"tips": "float"}, **QUARANTINE}, rows=59, quarantined=1),
    Case("wrong_type_many_rows", "types", "20% of a declared float column is not numbers",
         _one(csv(_lines_with({i: "20,abc,C1,1.0" for i in range(0, 60, 5)}))), "error",
         params={"column_types": {"tips": "float"}, **QUARANTINE},
         mention=("data.csv", "quarantined", "max_quarantined_fraction", "How to fix")),
    Case("type_flip_one_word", "types", "one 'noon' among 200 ints in an inferred column",
         _one(csv(_lines_with({50: "noon,1.5,C1,1.0"}, n=200))), "error",
         mention=("data.csv", "row 52", "fare", "noon", "How to fix")),
    Case("type_flip_quarantined", "types", "the same, with bad_rows=quarantine: the column stays int",
         _one(csv(_lines_with({50: "noon,1.5,C1,1.0"}, n=200))), "quarantine",
         params=QUARANTINE, rows=199, quarantined=1, kinds={"fare": "int"}),
    Case("nan_in_int_column", "types", "one 'nan' in an inferred int column",
         _one(csv(_lines_with({5: "nan,1.5,C1,1.0"}))), "error",
         mention=("data.csv", "row 7", "fare", "nan", "How to fix")),
    Case("inf_in_float_column", "types", "'inf' in a declared float column",
         _one(csv(_lines_with({5: "20,inf,C1,1.0"}))), "error",
         params={"column_types": {"tips": "float"}}, mention=("data.csv", "row 7", "tips", "How to fix")),
    Case("ints_with_floats", "types", "an int column with some decimals is read as float",
         _one(csv(_lines_with({3: "20.5,1.5,C1,1.0"}))), "ok", rows=60, kinds={"fare": "float"}),
    Case("declared_kind_disagrees", "types", "column_types says int, the data has decimals",
         _one(csv(rows(30))), "error",
         params={"column_types": {"trip_miles": "int"}}, mention=("data.csv", "trip_miles", "How to fix")),
    # --- empty
    Case("empty_file", "empty", "a 0-byte file",
         _one(b""), "error", mention=("data.csv", "How to fix")),
    Case("header_only", "empty", "a header and no rows",
         _one(csv([])), "error", mention=("data.csv", "How to fix")),
    Case("all_rows_bad", "empty", "every row is bad, with bad_rows=quarantine",
         _one(csv(["x,y,C1,z"] * 10)), "error",
         params={"column_types": {"fare": "int"}, **QUARANTINE}, mention=("data.csv", "quarantined", "How to fix")),
    # --- encodings
    Case("latin1_bytes", "encoding", "a Latin-1 'é' in a UTF-8 file",
         _one(csv(_lines_with({8: "20,1.5,Caf\xe9,1.0"})).replace(b"Caf\xc3\xa9", b"Caf\xe9")), "error",
         mention=("data.csv", "row 10", "UTF-8", "How to fix")),
    Case("utf8_bom", "encoding", "a UTF-8 byte-order mark before the header",
         _one(b"\xef\xbb\xbf" + csv(rows(30))), "ok", rows=30, params={"columns": COLUMNS}),
    Case("crlf_line_endings", "encoding", "Windows line endings",
         _one(csv(rows(30), newline="\r\n")), "ok", rows=30, kinds={"trip_miles": "float"}),
    Case("cr_only_line_endings", "encoding", "old Mac line endings (CR only)",
         _one(csv(rows(30), newline="\r")), "error", mention=("data.csv", "CR", "How to fix")),
    Case("utf16_file", "encoding", "a UTF-16 file",
         _one(csv(rows(10)).decode().encode("utf-16")), "error", mention=("data.csv", "How to fix")),
    # --- quoting
    Case("unterminated_quote_fail", "quoting", "an unterminated quote at line 31 of 60",
         _one(csv(_lines_with({29: '20,1.5,"C1,1.0'}))), "error",
         mention=("data.csv", "31", "quote", "How to fix")),
    Case("unterminated_quote_quarantine", "quoting",
         "the same with bad_rows=quarantine: the quote swallows half the file",
         _one(csv(_lines_with({29: '20,1.5,"C1,1.0'}))), "error",
         params=QUARANTINE, mention=("data.csv", "lines", "max_quarantined_fraction", "How to fix")),
    Case("embedded_newline", "quoting", "a quoted field holding a newline",
         _one(csv(_lines_with({4: '20,1.5,"C1\nsecond line",1.0'}))), "ok", rows=60),
    Case("quoted_delimiters", "quoting", "quoted fields holding commas and doubled quotes",
         _one(csv(_lines_with({4: '20,1.5,"Taxi, ""Best"" Co",1.0'}))), "ok", rows=60),
    # --- NaN / inf
    Case("nan_in_float_quarantine", "nan", "'NaN' and '-inf' in a float column, quarantined",
         _one(csv(_lines_with({3: "20,NaN,C1,1.0", 9: "20,-inf,C1,1.0"}))), "quarantine",
         params={"column_types": {"tips": "float"}, **QUARANTINE}, rows=58, quarantined=2),
    # --- labels
    Case("label_missing_one_row", "labels", "a row with an empty label",
         _one(csv(_lines_with({6: "20,,C1,1.0"}))), "error",
         params={"label": "tips", "column_types": {"tips": "float"}}, mention=("data.csv", "row 8", "tips", "How to fix")),
    Case("label_missing_quarantine", "labels", "rows with empty labels, quarantined",
         _one(csv(_lines_with({6: "20,,C1,1.0", 7: "21,,C2,1.0"}))), "quarantine",
         params={"label": "tips", "column_types": {"tips": "float"}, **QUARANTINE}, rows=58, quarantined=2),
    Case("label_constant", "labels", "a derived label that is 0 in every row (single class)",
         _one(csv(rows(60))), "label", params={"derived_columns": {"big_tipper": "tips > 100 * fare"}},
         mention=("big_tipper", "single value 0", "train", "How to fix")),
    Case("label_absent_everywhere", "labels", "the label column is empty in every row",
         _one(csv([f"{10 + i},,C1,1.0" for i in range(20)])), "error",
         params={"label": "tips"}, mention=("data.csv", "tips", "How to fix")),
    # --- sizes
    Case("huge_field", "size", "a 5 MB field in one row",
         _huge_field, "ok", rows=20),
    Case("very_wide_rows", "size", "2,000 extra columns",
         _wide, "ok", rows=40),
    Case("too_many_fields", "size", "a row with one field too many",
         _one(csv(_lines_with({12: "20,1.5,C1,1.0,oops"}))), "error",
         mention=("data.csv", "row 14", "How to fix")),
    Case("too_few_fields", "size", "a row with one field too few",
         _one(csv(_lines_with({12: "20,1.5,C1"}))), "error",
         mention=("data.csv", "row 14", "How to fix")),
    Case("ragged_rows_quarantine", "size", "short and long rows, quarantined",
         _one(csv(_lines_with({12: "20,1.5,C1", 13: "20,1.5,C1,1.0,oops"}))), "quarantine",
         params=QUARANTINE, rows=58, quarantined=2),
    # --- paths
    Case("no_such_directory", "paths", "input_base does not exist",
         lambda: {}, "error", params={"input_base": "/nonexistent/corpus-input"},
         mention=("/nonexistent/corpus-input", "How to fix")),
    Case("no_file_matches", "paths", "the pattern matches no file",
         _one(csv(rows(5)), "other.csv"), "error", mention=("data.csv", "How to fix")),
    Case("unreadable_directory", "paths", "input_base cannot be listed (permission) for a glob",
         _one(csv(rows(5))), "error", mention=("ermission", "How to fix"), file_pattern="*.csv",
         unprivileged=True, prepare=_chmod(0o311)),
    Case("unreadable_file", "paths", "the file cannot be read (permission)",
         _one(csv(rows(5))), "error", mention=("data.csv", "ermission", "How to fix"),
         unprivileged=True, prepare=_chmod(0o200, "data.csv")),
    Case("directory_named_like_file", "paths", "the pattern matches a directory",
         lambda: {"data.csv/inner.csv": csv(rows(5))}, "error", mention=("data.csv", "How to fix")),
    # --- not CSV
    Case("gzip_by_extension", "format", "a gzip-compressed CSV named .csv.gz",
         _one(gzip.compress(csv(rows(30))), "data.csv.gz"), "ok", rows=30, file_pattern="data.csv.gz"),
    Case("bz2_by_extension", "format", "a bzip2-compressed CSV named .csv.bz2",
         _one(bz2.compress(csv(rows(30))), "data.csv.bz2"), "ok", rows=30, file_pattern="data.csv.bz2"),
    Case("gzip_without_extension", "format", "gzip bytes in a file named .csv (read by magic bytes)",
         _one(gzip.compress(csv(rows(30)))), "ok", rows=30),
    Case("parquet_as_csv", "format", "a Parquet file passed as CSV",
         _parquet, "error", mention=("data.csv", "Parquet", "How to fix")),
    Case("tfrecord_as_csv", "format", "a TFRecord file passed as CSV",
         _tfrecord, "error", mention=("data.csv", "How to fix")),
    Case("random_binary", "format", "random binary bytes",
         _random_binary, "error", mention=("data.csv", "How to fix")),
    # --- schema and drift between spans (ExampleValidator against the baseline span)
    Case("unchanged_with_outlier", "drift", "the same distribution, one huge outlier in the new span",
         lambda: {"data.csv": _span(600, start=600, miles=lambda i: 1710.0 if i == 650 else
                                   round(((i * 7919) % 997) / 100, 2))},
         "anomaly", baseline=lambda: {"data.csv": _span(600, start=0)}, anomaly=None),
    Case("numeric_drift", "drift", "trip_miles shifted by +8 in the new span",
         lambda: {"data.csv": _span(600, start=600, miles=lambda i: round(((i * 7919) % 997) / 100 + 8, 2))},
         "anomaly", baseline=lambda: {"data.csv": _span(600, start=0)}, anomaly="trip_miles"),
    Case("new_categories", "drift", "a quarter of the new span's companies were never seen",
         lambda: {"data.csv": _span(600, start=600, company=lambda i: f"New{i % 7}" if i % 4 == 0 else f"C{i % 5}")},
         "anomaly", baseline=lambda: {"data.csv": _span(600, start=0)}, anomaly="company"),
)

BY_NAME = {case.name: case for case in CASES}
