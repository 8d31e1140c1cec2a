"""The CLI's run options on a small real pipeline file (no TensorFlow): --from, --to, --no-cache."""

import textwrap

from tests.pipeline.e2e_helpers import cli, states
from pipeline.progress import notes
from components.artifacts import ExampleAnomalies, Examples

PIPELINE = textwrap.dedent("""
    from pipeline import Pipeline
    from tests.pipeline.toy_components import Add, SchemaOf, Source

    def create_pipeline(*, root, beam_pipeline_args=(), metadata=None):
        source = Source(2)
        add = Add(source.outputs["examples"], add=1)
        return Pipeline("toy-cli", root, [source, add, SchemaOf(add.outputs["statistics"])],
                        beam_pipeline_args=beam_pipeline_args, metadata=metadata)
""")


def test_run_options(tmp_path):
    path = tmp_path / "toy.py"
    path.write_text(PIPELINE)
    root = str(tmp_path / "root")
    first = cli("run", str(path), "--root", root, "--to", "Add")
    assert first.returncode == 0, first.stderr
    assert states(root) == {"Source": "COMPLETE", "Add": "COMPLETE"}
    tail = cli("run", str(path), "--root", root, "--from", "Add", "--no-cache")
    assert tail.returncode == 0, tail.stderr
    assert states(root) == {"Add": "COMPLETE", "SchemaOf": "COMPLETE"}
    cached = cli("run", str(path), "--root", root, "--metadata", f"sqlite:///{root}/metadata.sqlite")
    assert "executed [], cached ['Source', 'Add', 'SchemaOf']" in cached.stdout
    unknown = cli("run", str(path), "--root", root, "--from", "Nope")
    assert unknown.returncode == 2 and "got component id 'Nope'" in unknown.stderr


def test_notes_surface_quarantine_and_warned_anomalies():
    examples = Examples(uri="/x", properties={"quarantined": 3, "rows_in": 10,
                                              "quarantine_file": "quarantine/rows.jsonl"})
    anomalies = ExampleAnomalies(uri="/a", properties={"anomaly_counts": {"train": 2, "eval": 0}})
    assert notes({"examples": examples, "anomalies": anomalies}) == [
        "quarantined 3 of 10 rows: /x/quarantine/rows.jsonl",
        "anomalies (warn): {'train': 2, 'eval': 0} in /a"]
    # A quarantined record may span many physical lines (an unterminated quote): both counts show.
    csv_examples = Examples(uri="/z", properties={"quarantined": 1, "rows_in": 1000, "lines_in": 2001,
                                                  "lines_quarantined": 1001,
                                                  "quarantine_file": "quarantine/rows.jsonl"})
    assert notes({"examples": csv_examples}) == [
        "quarantined 1 of 1000 rows (1001 of 2001 lines): /z/quarantine/rows.jsonl"]
    assert notes({"examples": Examples(uri="/y", properties={"quarantined": 0})}) == []
