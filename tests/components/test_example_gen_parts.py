"""Fast tests of ExampleGen's pure parts: expressions, span resolution, CSV reading."""

import pytest

from components.base import DataError
from components.example_gen import ExampleGen, SplitConfig
from components.example_gen.csv_reader import CsvReader
from components.example_gen.expressions import Expression
from components.example_gen.spans import resolve_span


def test_expression_evaluates_and_handles_missing():
    e = Expression("y", "tips > 0.2 * fare and not fare == 0")
    assert e.columns == ["tips", "fare"] and e.kind == "int"
    assert e.evaluate({"tips": 3.0, "fare": 10.0}) == 1
    assert e.evaluate({"tips": 1.0, "fare": 10.0}) == 0
    assert e.evaluate({"tips": None, "fare": 10.0}) is None
    assert Expression("r", "tips / fare").evaluate({"tips": 1.0, "fare": 0.0}) is None
    assert Expression("r", "-tips % 3").kind == "float"


def test_expression_rejects_code():
    with pytest.raises(ValueError, match=r"using .__import__\(.os.\).; expected only numbers"):
        Expression("y", "__import__('os')")
    with pytest.raises(ValueError, match="it does not parse"):
        Expression("y", "tips >")
    with pytest.raises(ValueError, match="does not parse|expected only"):
        ExampleGen("x", derived_columns={"y": "a ** 2"})


def test_resolve_span_picks_latest_span_and_version(tmp_path):
    for name in ["span-1.csv", "span-2.csv", "span-10-v1.csv", "span-10-v3.csv", "other.txt"]:
        (tmp_path / name).write_text("a\n1\n")
    assert resolve_span(str(tmp_path), "span-{SPAN}.csv") == (2, None, [str(tmp_path / "span-2.csv")])
    assert resolve_span(str(tmp_path), "span-{SPAN}-v{VERSION}.csv") == (10, 3, [str(tmp_path / "span-10-v3.csv")])
    assert resolve_span(str(tmp_path), "other.txt")[0] == 0
    with pytest.raises(ValueError, match="no file matches"):
        resolve_span(str(tmp_path), "nope-{SPAN}.csv")
    with pytest.raises(ValueError, match="expected {SPAN} whenever {VERSION} is used"):
        resolve_span(str(tmp_path), "span-1{VERSION}.csv")
    (tmp_path / "d-x.csv").write_text("a\n")
    with pytest.raises(ValueError, match="none has a numeric {SPAN}"):
        resolve_span(str(tmp_path), "d-{SPAN}.csv")


def _reader(tmp_path, data: bytes):
    path = tmp_path / "d.csv"
    path.write_bytes(data)
    return CsvReader(str(path))


def test_csv_reader_rows_and_row_numbers(tmp_path):
    reader = _reader(tmp_path, b'a,b\n1,"x\ny"\n\n3,4\n')
    assert reader.header == ["a", "b"]
    assert list(reader.rows()) == [(2, ["1", "x\ny"]), (5, ["3", "4"])]


@pytest.mark.parametrize("data, row, column, message", [
    (b"a,b\n1\n", 2, "b", "has 1 fields; expected 2 \\(no value for column 'b'\\)"),
    (b"a,b\n1,2,3\n", 2, None, "has 3 fields; expected 2 \\(an extra field after column 'b'\\)"),
    (b"a,b\n1,\xff\xfe\n", 2, "b", "has bytes that are not UTF-8"),
    (b'a,b\n1,2\n3,"unterminated\n5,6\n', 3, None, "an unterminated quote: .*lines 3-4"),
])
def test_csv_reader_bad_rows_name_file_row_column(tmp_path, data, row, column, message):
    results = list(_reader(tmp_path, data).rows())
    errors = [r for _, r in results if isinstance(r, DataError)]
    assert len(errors) == 1
    error = errors[0]
    assert (error.row, error.column) == (row, column)
    assert str(error).startswith(f"{tmp_path / 'd.csv'} row {row}")
    assert pytest.importorskip("re").search(message, str(error))


@pytest.mark.parametrize("data, message", [
    (b"", "the file is empty"),
    (b"a,b\n", "has a header but no data rows"),
    (b"a,a\n1,2\n", "names column 'a' twice"),
    (b"a,\n1,2\n", "has an empty or non-UTF-8 column name"),
])
def test_csv_reader_file_level_errors(tmp_path, data, message):
    with pytest.raises(DataError, match=message):
        list(_reader(tmp_path, data).rows())


def test_component_argument_errors():
    with pytest.raises(ValueError, match="ExampleGen got format='xml'"):
        ExampleGen("x", format="xml")
    with pytest.raises(ValueError, match="ExampleGen got bad_rows='drop'"):
        ExampleGen("x", bad_rows="drop")
    with pytest.raises(ValueError, match=r"column_types\['a'\]='double'"):
        ExampleGen("x", column_types={"a": "double"})
    with pytest.raises(ValueError, match="SplitConfig got ratios=\\(1,\\) for names"):
        SplitConfig(ratios=(1,))
    with pytest.raises(ValueError, match="SplitConfig got names=\\(\\)"):
        SplitConfig(names=())
