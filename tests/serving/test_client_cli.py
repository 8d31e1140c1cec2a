

def test_csv_empty_cells_are_missing_features(tmp_path):
    from serving.client.readers import read_rows

    path = tmp_path / "rows.csv"
    path.write_text("a,b,c\n1,,x\n")
    assert read_rows(str(path)) == [{"a": 1, "c": "x"}]
