"""Every bad-input case gets its documented outcome, in bounded time (issue 14).

See ``tests/corpus/cases.py`` for the cases and ``docs/pipeline.md`` for the table.
"""

from __future__ import annotations

import pytest

from tests.corpus.cases import CASES
from tests.corpus.runner import run_case


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case(case, tmp_path):
    outcome = run_case(case, str(tmp_path))
    assert outcome.kind != "hang", outcome.message
    # Bounded and proportional: the largest input here is ~5 MB; Beam's start-up is most of it.
    assert outcome.seconds < 120, f"{case.name} took {outcome.seconds:.0f} s"
    if case.outcome in ("error", "label"):
        assert outcome.kind == "error", f"{case.name}: expected an error, got {outcome}"
        message = outcome.message
        assert "\n" not in message.strip(), f"not one line: {message!r}"
        assert len(message) < 2000, message
        missing = [m for m in case.mention if m.lower() not in message.lower()]
        assert not missing, f"{case.name}: the error does not mention {missing}: {message}"
        assert "Traceback" not in message
    elif case.outcome == "anomaly":
        assert outcome.kind == "anomaly", outcome
        if case.anomaly is None:
            assert outcome.anomalies == [], outcome.anomalies
        else:
            assert case.anomaly in outcome.anomalies, outcome.anomalies
    else:
        assert outcome.kind == case.outcome, f"{case.name}: expected {case.outcome}, got {outcome}"
        props = outcome.properties
        kept = sum(props["row_counts"].values())
        assert props["rows_in"] == kept + props["quarantined"], props  # the counts balance
        assert kept == case.rows, props
        if case.outcome == "quarantine":
            assert props["quarantined"] == case.quarantined, props
            assert props["lines_quarantined"] >= props["quarantined"], props
        for column, kind in (case.kinds or {}).items():
            assert props["column_kinds"][column] == kind, props["column_kinds"]


def test_the_corpus_is_large_and_varied():
    assert len(CASES) >= 40
    assert len({c.category for c in CASES}) >= 10
    assert len({c.name for c in CASES}) == len(CASES)


QUARANTINE_PIPELINE = '''
from pipeline import Pipeline
from components.example_gen import ExampleGen

def create_pipeline(*, root, beam_pipeline_args=(), metadata=None):
    gen = ExampleGen({input_base!r}, file_pattern="data.csv", bad_rows="quarantine",
                     column_types={{"tips": "float"}})
    return Pipeline("corpus-quarantine", root, [gen], beam_pipeline_args=beam_pipeline_args,
                    metadata=metadata)
'''


def test_quarantine_counts_are_recorded_and_shown_by_pipeline_runs(tmp_path):
    """Through the real CLI: the metadata keeps the counts, ``python -m pipeline runs`` shows them."""
    from pipeline.metadata import MetadataStore
    from tests.corpus.cases import _lines_with, csv
    from tests.pipeline.e2e_helpers import cli

    data = tmp_path / "in"
    data.mkdir()
    # One quoted field holding a newline spans two physical lines, and it is the bad row.
    (data / "data.csv").write_bytes(csv(_lines_with({10: '20,"a\nb",C1,1.0'})))
    path = tmp_path / "p.py"
    path.write_text(QUARANTINE_PIPELINE.format(input_base=str(data)))
    root = str(tmp_path / "root")
    run = cli("run", str(path), "--root", root, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    store = MetadataStore(f"sqlite:///{root}/metadata.sqlite")
    (execution,) = store.executions_of_run(store.list_runs()[0]["id"])
    props = store.outputs_of(execution["id"])["examples"].properties
    assert props["rows_in"] == 60 and props["quarantined"] == 1
    assert props["rows_in"] == sum(props["row_counts"].values()) + props["quarantined"]
    assert props["lines_in"] == 61 and props["lines_quarantined"] == 2
    shown = cli("runs", "--root", root)
    assert shown.returncode == 0, shown.stderr
    assert "quarantined 1 of 60 rows (2 of 61 lines)" in shown.stdout, shown.stdout


def test_docs_table_lists_every_case():
    import os

    from tests.corpus.runner import REPO

    with open(os.path.join(REPO, "docs", "pipeline.md"), encoding="utf-8") as f:
        text = f.read()
    missing = [case.name for case in CASES if f"| `{case.name}` |" not in text]
    assert not missing, f"docs/pipeline.md's corpus table lacks {missing}"
