"""ExampleGen on hostile input: quarantine limits by rows and lines, type inference, misleading
files (BOM, CR-only, compressed, binary, unreadable directories), Beam's traceback, size bounds."""

import bz2
import gzip
import json
import os
import re
import subprocess
import sys
import time

import pytest

from components.base import ComponentError, DataError
from components.example_gen import ExampleGen, ExampleGenParameters
from components.example_gen.csv_reader import CsvReader
from components.example_gen.records import csv_file_records, csv_kinds
from components.example_gen.spans import resolve_span
from tests.components.helpers import execute, read_examples

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HEADER = "trip_start_hour,fare,company\n"


def _rows(n, start=0):
    return "".join(f"{(i % 24)},{10 + i % 7}.5,C{i % 3}\n" for i in range(start, start + n))


def _write(tmp_path, data, name="data.csv"):
    base = tmp_path / "in"
    base.mkdir(parents=True, exist_ok=True)
    (base / name).write_bytes(data if isinstance(data, bytes) else data.encode())
    return str(base), str(base / name)


def _gen(tmp_path, data, name="data.csv", **kwargs):
    base, _ = _write(tmp_path, data, name)
    return execute(ExampleGen(base, file_pattern=name, **kwargs), tmp_path)["examples"]


def _all_rows(out):
    return read_examples(out, "train") + read_examples(out, "eval")


# 1. Quarantine: physical lines count, and a limit on the quarantined share ---------------------
def _swallowed_file():
    """2,000 rows; row at line 1001 opens a quote that is never closed (it swallows lines 1001-2001)."""
    before, after = _rows(999), _rows(1000, start=999)
    return HEADER + before + '7,"12.5,C1\n' + after


def test_unterminated_quote_swallowing_half_the_file_fails_past_the_limit(tmp_path):
    with pytest.raises(ComponentError) as info:
        _gen(tmp_path, _swallowed_file(), bad_rows="quarantine")
    message = str(info.value)
    assert "\n" not in message
    assert "ExampleGen quarantined 1 of 1000 rows (0.1%), spanning 1001 of 2000 lines (50.0%)" in message
    assert "more than max_quarantined_fraction=0.1" in message
    assert "the largest is " in message and "data.csv row 1001 (1001 lines): an unterminated quote" in message
    assert "quarantine/rows.jsonl" in message
    assert "How to fix: fix the data (see the quarantined rows), or raise max_quarantined_fraction" in message


def test_quarantine_records_lines_and_passes_under_a_raised_limit(tmp_path):
    out = _gen(tmp_path, _swallowed_file(), bad_rows="quarantine", max_quarantined_fraction=0.6)
    p = out.properties
    assert (p["rows_in"], p["quarantined"], p["lines_in"], p["lines_quarantined"]) == (1000, 1, 2000, 1001)
    assert p["rows_in"] == sum(p["row_counts"].values()) + p["quarantined"]
    with open(out.quarantine_path) as f:
        (entry,) = [json.loads(line) for line in f]
    assert (entry["row"], entry["lines"]) == (1001, 1001)


def test_quarantined_share_of_rows_is_limited_too(tmp_path):
    bad = "".join(f"{i % 24},abc,C1\n" for i in range(15))
    text = HEADER + _rows(85) + bad
    with pytest.raises(ComponentError, match=r"quarantined 15 of 100 rows \(15\.0%\), spanning 15 of 100 lines "
                                             r"\(15\.0%\), more than max_quarantined_fraction=0\.1; e\.g\. .*"
                                             r"data\.csv row \d+ column 'fare': 'abc' is not a float"):
        _gen(tmp_path, text, bad_rows="quarantine", column_types={"fare": "float"})
    out = _gen(tmp_path / "ok", text, bad_rows="quarantine", column_types={"fare": "float"},
               max_quarantined_fraction=0.15)
    assert out.properties["quarantined"] == 15


@pytest.mark.parametrize("value", [-0.1, 1.5, "0.1", True])
def test_max_quarantined_fraction_is_checked(value):
    with pytest.raises(ValueError, match="ExampleGen got max_quarantined_fraction=.*; expected a number from 0 to 1"):
        ExampleGen("x", max_quarantined_fraction=value)
    assert ExampleGenParameters(input_base="x").max_quarantined_fraction == 0.10


# 2. Type inference: no silent flips ----------------------------------------------------------
def _kinds(tmp_path, text, **params):
    _, path = _write(tmp_path, text)
    return csv_kinds([path], ExampleGenParameters(input_base=str(tmp_path), **params), {})


def test_one_odd_value_does_not_flip_an_int_column_to_string(tmp_path):
    text = HEADER + _rows(150) + "noon,11.5,C1\n" + _rows(49)
    inference = _kinds(tmp_path, text)
    assert inference.kinds == {"trip_start_hour": "int", "fare": "float", "company": "string"}
    (warning,) = inference.warnings
    assert warning.startswith("column 'trip_start_hour': inferred int although 1 of 200 values are not numbers "
                              "(first: 'noon' at ")
    assert "row 152); those rows are bad rows" in warning and "column_types={'trip_start_hour': 'string'}" in warning
    with pytest.raises(DataError) as info:
        _gen(tmp_path, text)
    error = info.value
    assert (error.row, error.column) == (152, "trip_start_hour")
    assert "'noon' is not an int (the column was inferred int from its other values). How to fix" in str(error)
    out = _gen(tmp_path / "q", text, bad_rows="quarantine")
    assert out.properties["column_kinds"]["trip_start_hour"] == "int"
    assert out.properties["quarantined"] == 1 and out.properties["inference_warnings"] == [
        warning.replace(str(tmp_path / "in"), str(tmp_path / "q" / "in"))]
    assert all(isinstance(r["trip_start_hour"][0], int) for r in _all_rows(out))


def test_nan_does_not_flip_an_int_column_to_float(tmp_path):
    text = HEADER + _rows(50) + "nan,11.5,C1\n"
    inference = _kinds(tmp_path, text)
    assert inference.kinds["trip_start_hour"] == "int"
    assert inference.warnings[0].startswith("column 'trip_start_hour': inferred int; its 1 NaN/inf value(s) "
                                            "(first: 'nan' at ")
    with pytest.raises(DataError, match=r"row 52 column 'trip_start_hour': 'nan' is not a finite number"):
        _gen(tmp_path, text)


def test_many_odd_values_make_a_string_with_a_warning_and_declared_kinds_win(tmp_path):
    text = HEADER + _rows(90) + "".join("noon,11.5,C1\n" for _ in range(10))
    inference = _kinds(tmp_path, text)
    assert inference.kinds["trip_start_hour"] == "string"
    assert inference.warnings[0].startswith("column 'trip_start_hour': inferred string although 90 of 100 "
                                            "values are numbers: 10 are not")
    declared = _kinds(tmp_path, text, column_types={"trip_start_hour": "string"})
    assert declared.kinds["trip_start_hour"] == "string" and not declared.warnings
    assert "trip_start_hour" not in declared.inferred
    assert _kinds(tmp_path, "a,b\n,x\n,1\n").kinds == {"a": "int", "b": "string"}  # as before: empty -> int


# 3. Misleading messages ----------------------------------------------------------------------
def test_utf8_bom_is_stripped_from_the_first_column_name(tmp_path):
    text = b"\xef\xbb\xbf" + ("fare,tips\n" + "".join(f"{10 + i},{i % 3}\n" for i in range(30))).encode()
    _, path = _write(tmp_path, text)
    assert CsvReader(path).header == ["fare", "tips"]
    out = _gen(tmp_path, text, derived_columns={"big": "tips > 0.1 * fare"}, label="big",
               column_types={"fare": "int"})
    assert out.properties["rows_in"] == 30 and out.properties["column_kinds"]["fare"] == "int"


def test_cr_only_line_endings_are_named(tmp_path):
    with pytest.raises(DataError) as info:
        _gen(tmp_path, "a,b\r1,2\r3,4\r")
    assert str(info.value) == (f"{tmp_path / 'in' / 'data.csv'}: the file uses CR-only (old Mac) line endings. "
                               "How to fix: convert to LF or CRLF (e.g. tr '\\r' '\\n' < in.csv > out.csv).")
    assert _gen(tmp_path / "crlf", "a,b\r\n1,2\r\n3,4\r\n").properties["rows_in"] == 2


def test_unreadable_directory_names_the_permission_error(tmp_path, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "data.csv").write_text("a\n1\n")
    real_scandir = os.scandir

    def scandir(path="."):  # what a directory without read permission does for a non-root user
        if os.fspath(path).rstrip("/") == str(locked):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(DataError) as info:
        resolve_span(str(locked), "*.csv")
    assert str(info.value).startswith(f"{locked}: cannot be listed (PermissionError: Permission denied)")
    assert "How to fix: make it readable" in str(info.value)
    with pytest.raises(DataError, match=f"{tmp_path}/locked: cannot be listed"):
        resolve_span(str(tmp_path), "locked/*.csv")
    with pytest.raises(ValueError, match=r"no file matches .* \(input_base is not a directory\)"):
        resolve_span(str(tmp_path / "nope"), "*.csv")


def test_unreadable_file_names_the_permission_error(tmp_path, monkeypatch):
    from components.example_gen import csv_reader

    _, path = _write(tmp_path, "a\n1\n")

    def locked_open(file, *args, **kwargs):  # what a file without read permission does for a non-root user
        raise PermissionError(13, "Permission denied", file)

    monkeypatch.setattr(csv_reader, "open", locked_open, raising=False)
    with pytest.raises(DataError) as info:
        CsvReader(path)
    assert str(info.value) == (f"{path}: cannot be opened (PermissionError: Permission denied). How to fix: check "
                               "the path and its permissions (the file and every directory above it must be "
                               "readable by this user).")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any directory, so chmod 000 cannot lock it")
def test_unreadable_directory_with_real_permissions(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "data.csv").write_text("a\n1\n")
    locked.chmod(0)
    try:
        with pytest.raises(DataError, match="cannot be listed \\(PermissionError"):
            resolve_span(str(locked), "*.csv")
    finally:
        locked.chmod(0o755)


def test_gzip_and_bz2_csv_are_read_with_or_without_their_extension(tmp_path):
    text = (HEADER + _rows(40)).encode()
    for name, data in (("d.csv.gz", gzip.compress(text)), ("d.csv.bz2", bz2.compress(text)),
                       ("gz_no_ext.csv", gzip.compress(text)), ("bz2_no_ext.csv", bz2.compress(text))):
        _, path = _write(tmp_path, data, name)
        reader = CsvReader(path)
        assert reader.header == ["trip_start_hour", "fare", "company"] and len(list(reader.rows())) == 40
    base = str(tmp_path / "in")
    out = execute(ExampleGen(base, file_pattern="*"), tmp_path)["examples"]
    assert out.properties["rows_in"] == 160 and out.properties["column_kinds"]["trip_start_hour"] == "int"


def test_truncated_gzip_is_a_clear_error(tmp_path):
    import random

    rng = random.Random(0)  # numbers that do not compress away, so the cut falls past the first 64 KiB
    data = gzip.compress((HEADER + "".join(f"{rng.randrange(24)},{rng.random()},C{rng.randrange(99)}\n"
                                           for _ in range(20000))).encode())
    _, path = _write(tmp_path, data[: len(data) // 2], "d.csv.gz")
    with pytest.raises(DataError, match=r"d\.csv\.gz row \d+: the gzip data cannot be read: it is corrupt or "
                                        r"truncated .*How to fix: re-create or re-download the file"):
        list(CsvReader(path).rows())


def test_parquet_zip_utf16_and_binary_files_are_named(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    base = tmp_path / "in"
    base.mkdir()
    pq.write_table(pa.table({"x": [1, 2]}), str(base / "data.csv"))
    with pytest.raises(DataError) as info:
        execute(ExampleGen(str(base), file_pattern="data.csv"), tmp_path)
    assert str(info.value) == (f"{base / 'data.csv'}: looks like a Parquet file, not CSV text. How to fix: use "
                               "format='parquet' (YAML: data.format: parquet), or pass a CSV file.")
    cases = [
        (b"PK\x03\x04rest", "looks like a ZIP archive"),
        ("a,b\n1,2\n".encode("utf-16"), "looks like UTF-16 text"),
        (b"\x10\x00\x00\x00\x00\x00\x00\x00\x8a\x9b", "looks like a binary file (it has NUL bytes), not CSV text"),
        (gzip.compress(b"\x10\x00\x00\x00\x00\x00"), "looks like a gzip-compressed binary file"),
        (b"\xfd7zXZ\x00\x00", "looks like an xz-compressed file"),
    ]
    for data, message in cases:
        (base / "x.csv").write_bytes(data)
        with pytest.raises(DataError, match=re.escape(message)) as info:
            CsvReader(str(base / "x.csv"))
        assert "How to fix" in str(info.value) and "\n" not in str(info.value)


def test_fail_mode_prints_only_the_one_line_error(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "data.csv").write_text("a,b\n1,2\nx,3\n")
    (tmp_path / "p.py").write_text(
        "from pipeline.dsl import Pipeline\n"
        "from components.example_gen import ExampleGen\n"
        "def create_pipeline(*, root, beam_pipeline_args=()):\n"
        f"    return Pipeline('bad', root, [ExampleGen({str(tmp_path / 'in')!r}, column_types={{'a': 'int'}})],\n"
        "                    beam_pipeline_args=beam_pipeline_args)\n")
    done = subprocess.run([sys.executable, "-m", "pipeline", "run", str(tmp_path / "p.py"), "--root",
                           str(tmp_path / "root")], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "COLUMNS": "400"})
    assert done.returncode == 1
    assert "row 3 column 'a': 'x' is not an int" in done.stderr
    assert "Traceback" not in done.stderr and "DoFnRunner" not in done.stderr


# 4. Size bounds: time proportional to the input ---------------------------------------------
def test_huge_field_and_wide_rows_are_read_in_bounded_time(tmp_path):
    started = time.monotonic()
    big = "x" * (10 << 20)
    _, path = _write(tmp_path, f'id,text\n1,"{big}"\n2,b\n', "big.csv")
    kinds = csv_kinds([path], ExampleGenParameters(input_base=str(tmp_path)), {}).kinds
    records = list(csv_file_records(path, kinds))
    assert len(records[0][2]["text"]) == len(big) and records[1][2]["text"] == "b"
    width = 2000
    header = ",".join(f"c{i}" for i in range(width))
    rows = "".join(",".join(str(r * i) for i in range(width)) + "\n" for r in range(50))
    _, path = _write(tmp_path, header + "\n" + rows, "wide.csv")
    inference = csv_kinds([path], ExampleGenParameters(input_base=str(tmp_path)), {})
    assert set(inference.kinds.values()) == {"int"}
    assert sum(1 for _ in csv_file_records(path, inference.kinds)) == 50
    assert time.monotonic() - started < 60


def test_field_past_the_size_limit_is_a_bad_row(tmp_path):
    big = "x" * ((16 << 20) + 10)
    _, path = _write(tmp_path, f'id,text\n1,"{big}"\n2,b\n', "big.csv")
    (_, first), (_, second) = list(CsvReader(path).rows())
    assert isinstance(first, DataError) and "a field longer than the 16 MiB limit" in str(first)
    assert first.row == 2


def test_huge_values_are_cut_in_messages_and_wide_rows_run_through_beam(tmp_path):
    big = "9" * (1 << 20)
    text = "n,s\n" + "".join(f"{i},x\n" for i in range(300)) + f"{big},x\n"
    with pytest.raises(DataError) as info:
        _gen(tmp_path, text)
    assert len(str(info.value)) < 400 and "(1,048,576 characters)" in str(info.value)
    width = 2000
    started = time.monotonic()
    header = ",".join(f"c{i}" for i in range(width))
    rows = "".join(",".join(f"v{r}" if i % 2 else str(r + i) for i in range(width)) + "\n" for r in range(30))
    out = _gen(tmp_path / "wide", header + "\n" + rows)
    assert out.properties["rows_in"] == 30 and len(_all_rows(out)[0]) == width
    assert time.monotonic() - started < 60
