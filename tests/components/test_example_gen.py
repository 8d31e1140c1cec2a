"""ExampleGen's executor on small real files: formats, splits, spans, bad input."""

import json
import re

import pytest

from components.base import ComponentError, DataError
from components.example_gen import ExampleGen, SplitConfig
from tests.components.helpers import execute, read_examples

HEADER = "fare,tips,company,trip_miles\n"
GOOD = "".join(f"{10 + i},{(i % 4) * 1.5},C{i % 3},{i / 10}\n" for i in range(60))
LABEL = {"big_tipper": "tips > 0.2 * fare"}


def _write(tmp_path, text, name="data.csv"):
    base = tmp_path / "in"
    base.mkdir(parents=True, exist_ok=True)
    (base / name).write_bytes(text if isinstance(text, bytes) else text.encode())
    return str(base), str(base / name)


def _gen(tmp_path, text, **kwargs):
    base, _ = _write(tmp_path, text)
    kwargs.setdefault("file_pattern", "data.csv")
    return execute(ExampleGen(base, **kwargs), tmp_path)["examples"]


def test_csv_to_split_examples_with_derived_label_and_types(tmp_path):
    out = _gen(tmp_path, HEADER + GOOD, derived_columns=LABEL, label="big_tipper",
               column_types={"tips": "float"})
    p = out.properties
    assert p["split_names"] == ["train", "eval"] and p["span"] == 0
    assert p["rows_in"] == 60 and p["quarantined"] == 0
    assert sum(p["row_counts"].values()) == 60 and 25 <= p["row_counts"]["train"] <= 55
    assert p["column_kinds"] == {"fare": "int", "tips": "float", "company": "string", "trip_miles": "float",
                                 "big_tipper": "int"}
    rows = read_examples(out, "train") + read_examples(out, "eval")
    assert len(rows) == 60
    for row in rows:
        assert row["big_tipper"] == [int(row["tips"][0] > 0.2 * row["fare"][0])]
        assert isinstance(row["company"][0], bytes)


def test_hash_key_keeps_equal_keys_together_and_partition_feature(tmp_path):
    out = _gen(tmp_path, HEADER + GOOD, split=SplitConfig(hash_key="company"))
    for split in ("train", "eval"):
        companies = {r["company"][0] for r in read_examples(out, split)}
        other = {r["company"][0] for r in read_examples(out, "eval" if split == "train" else "train")}
        assert not companies & other
    text = "a,part\n" + "".join(f"{i},{'train' if i % 2 else 'test'}\n" for i in range(10))
    out = _gen(tmp_path / "p", text, split=SplitConfig(names=("train", "test"), partition_feature="part"))
    assert out.properties["row_counts"] == {"train": 5, "test": 5}


def test_latest_span_is_picked_and_recorded(tmp_path):
    _write(tmp_path, HEADER + GOOD, "span-1.csv")
    base, _ = _write(tmp_path, HEADER + "".join(GOOD.splitlines(True)[:7]), "span-2.csv")
    out = execute(ExampleGen(base, file_pattern="span-{SPAN}.csv"), tmp_path)["examples"]
    assert out.properties["span"] == 2 and out.properties["files"][0].endswith("span-2.csv")
    assert out.properties["rows_in"] == 7


def test_tfrecord_gzip_plain_and_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    import tensorflow as tf

    base = tmp_path / "in"
    base.mkdir()
    for name, options in (("a.tfrecord.gz", "GZIP"), ("b.tfrecord", None)):
        with tf.io.TFRecordWriter(str(base / name), options=options) as w:
            for i in range(5):
                ex = tf.train.Example()
                ex.features.feature["x"].float_list.value.append(i)
                ex.features.feature["s"].bytes_list.value.append(b"v")
                w.write(ex.SerializeToString())
    out = execute(ExampleGen(str(base), file_pattern="*.tfrecord*", format="tfrecord"), tmp_path)["examples"]
    assert out.properties["rows_in"] == 10
    assert sorted(r["x"][0] for s in ("train", "eval") for r in read_examples(out, s)) == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    pq.write_table(pa.table({"x": [1.5, 2.5, None], "b": [True, False, True], "s": ["a", "b", "c"]}),
                   str(base / "c.parquet"))
    out = execute(ExampleGen(str(base), file_pattern="*.parquet", format="parquet"), tmp_path)["examples"]
    rows = read_examples(out, "train") + read_examples(out, "eval")
    assert len(rows) == 3 and sum("x" in r for r in rows) == 2
    assert sorted(r["b"][0] for r in rows) == [0, 1, 1]


BAD_CASES = [
    # (name, file text, kwargs, row, column, message)
    ("missing column", "fare,company\n1,a\n", {"derived_columns": LABEL}, 1, "tips", "missing column 'tips'"),
    ("extra column", "fare,tips,x\n1,2,3\n", {"columns": ("fare", "tips")}, 1, "x", "extra column 'x'"),
    ("wrong type", HEADER + "10,1,a,0.5\nabc,1,a,0.5\n", {"column_types": {"fare": "float"}}, 3, "fare",
     "'abc' is not a float"),
    ("wrong int", HEADER + "10.5,1,a,0.5\n", {"column_types": {"fare": "int"}}, 2, "fare", "'10.5' is not an int"),
    ("non-UTF-8", HEADER.encode() + b"10,1,caf\xe9,0.5\n", {}, 2, "company", "bytes that are not UTF-8"),
    ("unterminated quote", HEADER + '10,1,"a,0.5\n11,2,b,0.6\n', {}, 2, None, "an unterminated quote"),
    ("NaN", HEADER + "10,1,a,0.5\nnan,1,a,0.5\n", {}, 3, "fare", "'nan' is not a finite number"),
    ("inf", HEADER + "10,1,a,inf\n", {"column_types": {"trip_miles": "float"}}, 2, "trip_miles",
     "'inf' is not a finite number"),
    ("missing label", HEADER + "10,,a,0.5\n", {"derived_columns": LABEL, "label": "big_tipper"}, 2, "big_tipper",
     "has no label value"),
    ("short row", HEADER + "10,1\n", {}, 2, "company", "has 2 fields; expected 4"),
]


@pytest.mark.parametrize("name, text, kwargs, row, column, message", BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_bad_input_fails_with_file_row_column(tmp_path, name, text, kwargs, row, column, message):
    with pytest.raises(DataError, match=re.escape(message)) as info:
        _gen(tmp_path, text, **kwargs)
    error = info.value
    assert error.path.endswith("data.csv") and error.row == row and error.column == column
    assert "\n" not in str(error)  # one-line summary
    assert "How to fix" in str(error)


@pytest.mark.parametrize("text, message", [(b"", "the file is empty"), (HEADER, "has a header but no data rows")])
def test_empty_files_fail_even_in_quarantine_mode(tmp_path, text, message):
    with pytest.raises(DataError, match=message):
        _gen(tmp_path, text, bad_rows="quarantine")


def test_quarantine_counts_every_row(tmp_path):
    rows = [
        "10,1,a,0.5",        # good
        "abc,1,a,0.5",       # wrong type
        "nan,1,a,0.5",       # NaN
        "10,,a,0.5",         # missing label (tips missing)
        "10,1",              # short row
        "10,1,a,0.5,9",      # extra field
        "12,3,b,0.7",        # good
    ]
    data = (HEADER + "\n".join(rows) + "\n").encode() + b"10,1,caf\xe9,0.5\n" + b'10,1,"open,0.5\n11,1,a,1\n'
    out = _gen(tmp_path, data, derived_columns=LABEL, label="big_tipper", column_types={"fare": "float"},
               bad_rows="quarantine", max_quarantined_fraction=1.0)
    p = out.properties
    assert p["rows_in"] == 9
    assert p["quarantined"] == 7
    assert p["rows_in"] == sum(p["row_counts"].values()) + p["quarantined"]
    with open(out.quarantine_path) as f:
        entries = [json.loads(line) for line in f]
    assert sorted(((e["row"], e["column"]) for e in entries), key=lambda rc: rc[0]) == [
        (3, "fare"), (4, "fare"), (5, "big_tipper"), (6, "company"), (7, None), (9, "company"), (10, None)]
    assert all(e["file"].endswith("data.csv") and e["problem"] for e in entries)
    assert p["lines_in"] == 10 and p["lines_quarantined"] == 8  # the unterminated quote spans lines 10-11
    assert sorted(e["lines"] for e in entries) == [1, 1, 1, 1, 1, 1, 2]


def test_all_rows_quarantined_is_an_error(tmp_path):
    with pytest.raises(ComponentError, match="ExampleGen wrote no rows .* all 1 rows were quarantined"):
        _gen(tmp_path, HEADER + "abc,1,a,1\n", column_types={"fare": "float"}, bad_rows="quarantine")


def test_partition_value_not_a_split_and_bad_tfrecord(tmp_path):
    with pytest.raises(DataError, match="has value 'x', which is not a split name"):
        _gen(tmp_path, "a,part\n1,x\n", split=SplitConfig(partition_feature="part"))
    base, _ = _write(tmp_path / "t", b"", "d.tfrecord")
    import tensorflow as tf
    with tf.io.TFRecordWriter(base + "/d.tfrecord") as w:
        w.write(b"\xff\xff not a proto")
    with pytest.raises(DataError, match="row 1: is not a serialized tf.Example"):
        execute(ExampleGen(base, file_pattern="d.tfrecord", format="tfrecord"), tmp_path)


def test_header_that_does_not_parse_and_parquet_list_column(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    with pytest.raises(DataError, match="row 1: the header row does not parse"):
        _gen(tmp_path, '"a,b\n')
    base = tmp_path / "pq"
    base.mkdir()
    pq.write_table(pa.table({"x": [[1, 2]]}), str(base / "d.parquet"))
    with pytest.raises(DataError, match="column 'x': has Parquet type list<element: int64>; expected a scalar"):
        execute(ExampleGen(str(base), file_pattern="*.parquet", format="parquet"), tmp_path)


def test_several_files_are_converted_in_parallel_and_counted(tmp_path):
    _write(tmp_path, HEADER + GOOD, "a.csv")
    base, _ = _write(tmp_path, HEADER + "".join(GOOD.splitlines(True)[:9]), "b.csv")
    out = execute(ExampleGen(base, file_pattern="*.csv"), tmp_path, beam_args=["--direct_num_workers=2"])["examples"]
    assert out.properties["rows_in"] == 69 == sum(out.properties["row_counts"].values())
    assert len(out.properties["files"]) == 2
    with pytest.raises(ValueError, match="NoSuchRunner"):
        execute(ExampleGen(base, file_pattern="*.csv"), tmp_path, beam_args=["--runner=NoSuchRunner"])
