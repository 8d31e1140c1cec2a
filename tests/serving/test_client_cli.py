

def test_csv_empty_cells_are_missing_features(tmp_path):
    from serving.client.readers import read_rows

    path = tmp_path / "rows.csv"
    path.write_text("a,b,c\n1,,x\n")
    assert read_rows(str(path)) == [{"a": 1, "c": "x"}]


SCHEMA = """
feature { name: "fare" type: FLOAT }
feature { name: "trip_seconds" type: FLOAT }
feature { name: "hour" type: INT }
feature { name: "company" type: BYTES }
"""


def test_schema_types_csv_and_jsonl_rows_as_the_model_parses_them(tmp_path):
    import pytest

    from serving.client.readers import read_rows

    schema = tmp_path / "schema.pbtxt"
    schema.write_text(SCHEMA)
    rows = tmp_path / "rows.csv"
    rows.write_text("fare,trip_seconds,hour,company,extra\n5,360,7.0,007,3\n")
    assert read_rows(str(rows)) == [{"fare": 5, "trip_seconds": 360, "hour": 7.0, "company": 7, "extra": 3}]
    typed = read_rows(str(rows), schema=str(schema))
    assert typed == [{"fare": 5.0, "trip_seconds": 360.0, "hour": 7, "company": "007", "extra": 3}]
    assert [type(typed[0][k]) for k in ("fare", "hour", "company")] == [float, int, str]

    jsonl = tmp_path / "rows.jsonl"
    jsonl.write_text('{"trip_seconds": 360, "hour": [1, 2]}\n')
    assert read_rows(str(jsonl), schema=str(schema)) == [{"trip_seconds": 360.0, "hour": [1, 2]}]

    rows.write_text("fare,hour\n1.5,2.5\n")
    with pytest.raises(ValueError, match=r"rows.csv, row 2, column 'hour'.*whole number"):
        read_rows(str(rows), schema=str(schema))
    bad = tmp_path / "bad.pbtxt"
    bad.write_text("feature { nme: 1 }")
    with pytest.raises(ValueError, match="bad.pbtxt is not a Schema"):
        read_rows(str(jsonl), schema=str(bad))
