"""The run report (``python -m pipeline report``) on a real run, checked in headless Chromium.

One small full taxi run (400 rows, six features, a linear model trained 200 steps; the schema
learned from train only, so the eval split has an anomaly; the Evaluator also computes ROC/PR
curves) feeds the slow tests, then
an all-cached rerun and a partial run (``to_nodes=["SchemaGen"]``) show cached and absent
sections. The browser test loads the page from a file:// URL and saves a screenshot.
"""

from __future__ import annotations

import csv
import glob
import os
import re
import subprocess
import sys
import textwrap
import time
from types import SimpleNamespace

import pytest

from pipeline import report_readers as readers
from pipeline.cli import main as cli_main
from pipeline.report import write_report
from tests.pipeline.e2e_helpers import REPO, cli
from tests.pipeline.headless_chromium import CHROMIUM, load_page, processes_using

SECTIONS = ["dag", "statistics", "anomalies", "transform", "training", "evaluation", "blessing", "push"]
ROWS = 400


# A taxi pipeline with few features and a linear model, so that it runs in well under a minute.
SPEC_FEATURES = ("trip_miles", "fare", "pickup_latitude", "payment_type", "company", "trip_start_hour")


def small_taxi_pipeline(root: str, data: str):
    from components.evaluator import Evaluator, MetricThreshold
    from components.evaluator.component import DEFAULT_METRICS
    from components.example_gen import ExampleGen
    from components.example_validator import ExampleValidator
    from components.feature_spec import Bucketized, FeatureSpec, Numeric, Vocabulary
    from components.infra_validator import InfraValidator
    from components.pusher import Pusher
    from components.resolver import LatestBlessedModelResolver
    from components.schema_gen import SchemaGen
    from components.statistics_gen import StatisticsGen
    from components.trainer import CannedEstimatorConfig, Trainer
    from components.transform import Transform
    from pipeline import Pipeline
    from pipeline.examples.taxi_pipeline import LABEL

    spec = FeatureSpec(features=(
        Numeric("trip_miles"), Numeric("fare"), Bucketized("pickup_latitude", num_buckets=4),
        Vocabulary("payment_type", top_k=10, num_oov_buckets=1), Vocabulary("company", top_k=20, num_oov_buckets=1),
        Vocabulary("trip_start_hour", num_oov_buckets=1)), label=LABEL)
    gen = ExampleGen(data, file_pattern="data.csv", column_types=spec.column_types(),
                     derived_columns={LABEL.name: LABEL.expression}, label=LABEL.name, bad_rows="quarantine")
    examples = gen.outputs["examples"]
    stats = StatisticsGen(examples)
    # A schema learned from train alone: a company seen only in eval is an anomaly there.
    schema = SchemaGen(stats.outputs["statistics"], splits=("train",))
    validator = ExampleValidator(stats.outputs["statistics"], schema.outputs["schema"], on_anomaly="warn")
    transform = Transform(examples, schema.outputs["schema"], feature_spec=spec)
    trainer = Trainer(transform.outputs["transformed_examples"], transform.outputs["transform_graph"],
                      schema.outputs["schema"], train_steps=200,
                      canned=CannedEstimatorConfig("LinearClassifier", feature_spec=spec, random_seed=1))
    baseline = LatestBlessedModelResolver(before=trainer.outputs["model"], pusher="Pusher", id="BaselineResolver")
    evaluator = Evaluator(examples, trainer.outputs["model"], baseline_model=baseline.outputs["model"],
                          label_key=LABEL.name, slicing_features=(("trip_start_hour",),),
                          metrics=DEFAULT_METRICS + ("ConfusionMatrixPlot",),  # for the ROC and PR curves
                          thresholds=(MetricThreshold("AUC", lower_bound=0.5, min_change=-0.05),
                                      MetricThreshold("Calibration", lower_bound=0.2, upper_bound=5.0)))
    infra = InfraValidator(trainer.outputs["model"], examples)
    pusher = Pusher(trainer.outputs["model"], model_blessing=evaluator.outputs["blessing"],
                    infra_blessing=infra.outputs["blessing"], push_destination=os.path.join(root, "serving"),
                    model_name="taxi", id="Pusher")
    return Pipeline("taxi-report", root, [gen, stats, schema, validator, transform, trainer, baseline, evaluator,
                                          infra, pusher], beam_pipeline_args=["--direct_num_workers=1"])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A full run, an all-cached rerun, and a partial run (``to_nodes=["SchemaGen"]``)."""
    from pipeline import LocalRunner

    work = tmp_path_factory.mktemp("report")
    data, root = work / "data", str(work / "root")
    data.mkdir()
    with open(os.path.join(REPO, "data", "taxi", "data.csv"), encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        header, rows = reader.fieldnames, [next(reader) for _ in range(ROWS)]
    with open(data / "data.csv", "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, header)
        writer.writeheader()
        writer.writerows(rows)
    pipeline = small_taxi_pipeline(root, str(data))
    start = time.monotonic()
    full = LocalRunner().run(pipeline)
    print(f"full run: {time.monotonic() - start:.1f} s")
    cached = LocalRunner().run(pipeline)
    partial = LocalRunner().run(pipeline, to_nodes=["SchemaGen"])
    return SimpleNamespace(root=root, full=full, cached=cached, partial=partial, work=work)


def _sections(text: str) -> dict[str, str]:
    found = re.findall(r'<section id="([^"]+)" class="report-section">(.*?)</section>', text, flags=re.S)
    return dict(found)


@pytest.mark.slow
def test_report_in_headless_chromium(runs, tmp_path):
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: scripts/system_packages.sh installs it (apt-get install -y chromium)")
    out = tmp_path / "report.html"
    # The CLI in a fresh process; it imports neither TensorFlow nor TFMA nor Beam (that keeps it fast).
    code = ("import sys; from pipeline.cli import main\n"
            f"status = main(['report', '--root', {runs.root!r}, '--run', '{runs.full.run_id}', '--out', {str(out)!r}])\n"
            "print(status, sorted(m for m in ('tensorflow', 'tensorflow_model_analysis', 'apache_beam') "
            "if m in sys.modules))")
    start = time.monotonic()
    made = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    seconds = time.monotonic() - start
    assert made.returncode == 0, made.stderr
    assert made.stdout.splitlines() == [str(out), "0 []"], made.stdout
    print(f"report of run {runs.full.run_id} written by the CLI in {seconds:.1f} s")
    text = out.read_text(encoding="utf-8")
    assert "http://" not in text and "https://" not in text and "<script" not in text

    evaluate = """[...document.querySelectorAll("section.report-section")].map(s => ({
        id: s.id, height: s.getBoundingClientRect().height,
        svgs: [...s.querySelectorAll("svg")].filter(v => v.getBoundingClientRect().width > 50).length,
        links: [...s.querySelectorAll("a[href]")].map(a => a.href)}))"""
    shot = tmp_path / "report.png"
    page = load_page(out.as_uri(), evaluate=evaluate, screenshot=str(shot), timeout_s=90)
    assert processes_using(page.profile) == []
    assert page.errors == []
    assert page.requests == [out.as_uri()]  # the page loads nothing
    sections = {s["id"]: s for s in page.value}
    assert list(sections) == SECTIONS
    for key, section in sections.items():
        assert section["height"] > 0 and section["svgs"] >= 1, (key, section)
    logs = [link for link in sections["dag"]["links"] if link.endswith(".log")]
    assert len(logs) == len(runs.full.states)  # every node of the run wrote its log
    assert all(os.path.isfile(link.removeprefix("file://")) for link in logs)
    with open(shot, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    print(f"screenshot: {shot}")

    html = _sections(text)
    assert 'class="bad"' in html["anomalies"] and "company" in html["anomalies"]  # highlighted
    assert "ROC curve" in html["evaluation"] and "trip_start_hour" in html["evaluation"]
    assert "BLESSED" in html["blessing"] and "&gt;= 0.5" in html["blessing"]
    pushed = runs.full.outputs["Pusher"]["pushed_model"].properties
    assert f"Pushed version {pushed['version']}" in html["push"] and "data.csv" in html["push"]
    for vocabulary in ("company", "payment_type", "trip_start_hour"):
        assert vocabulary in html["transform"]


@pytest.mark.slow
def test_cached_run_shows_the_reused_artifacts_and_a_partial_run_says_what_did_not_run(runs, tmp_path):
    cached = _sections(open(write_report(root=runs.root, run=runs.cached.run_id, out=str(tmp_path / "c.html")),
                            encoding="utf-8").read())
    assert list(cached) == SECTIONS
    for key in SECTIONS:
        assert "<svg" in cached[key], key
    for key, node in (("statistics", "StatisticsGen"), ("training", "Trainer"), ("evaluation", "Evaluator")):
        assert f"{node} was a cache hit" in cached[key]
    assert "yes (execution" in cached["dag"]

    partial = _sections(open(write_report(root=runs.root, run=runs.partial.run_id, out=str(tmp_path / "p.html")),
                             encoding="utf-8").read())
    assert "<svg" in partial["statistics"] and "StatisticsGen was a cache hit" in partial["statistics"]
    for key, node in (("anomalies", "ExampleValidator"), ("transform", "Transform"), ("training", "Trainer"),
                      ("evaluation", "Evaluator"), ("blessing", "Evaluator"), ("push", "Pusher")):
        assert f"{node} did not run in run {runs.partial.run_id}" in partial[key], key
    assert "not in this run" in partial["dag"]


@pytest.mark.slow
def test_readers_agree_with_tensorflow_tfma_and_tf_transform(runs):
    import numpy as np
    import tensorflow as tf
    import tensorflow_transform as tft

    from components.evaluator.executor import overall_metrics
    from tests.pipeline.e2e_helpers import raw_feature_spec
    from trainer.hooks.early_stopping import read_eval_metrics

    outputs = runs.full.outputs
    eval_dir = os.path.join(outputs["Trainer"]["model_run"].uri, "eval")
    by_step = {}
    for tag, points in readers.read_scalars(eval_dir).items():
        for step, value in points:
            by_step.setdefault(step, {})[tag] = value
    assert by_step == read_eval_metrics(eval_dir) and by_step

    evaluation = outputs["Evaluator"]["evaluation"].uri
    overall = readers.read_tfma_metrics(evaluation)[0]
    assert overall.slice == "overall"
    assert {name: v for (model, name), v in overall.values.items()} == pytest.approx(overall_metrics(evaluation))
    (curve,) = readers.read_tfma_curves(evaluation)
    assert len(curve.thresholds) > 100 and curve.recall[0] == 1.0

    # Bucket boundaries: each eval example's bucket, as tf.Transform assigns it, is the number
    # of boundaries at or below its value.
    graph = outputs["Transform"]["transform_graph"].uri
    boundaries = readers.bucket_boundaries(graph)
    assert sorted(boundaries) == ["pickup_latitude"]
    examples = outputs["ExampleGen"]["examples"]
    records = [r.numpy() for path in sorted(glob.glob(examples.file_pattern("eval")))
               for r in tf.data.TFRecordDataset(path, compression_type="GZIP")]
    raw = tf.io.parse_example(tf.constant(records), raw_feature_spec(outputs["SchemaGen"]["schema"].schema_path))
    transformed = tft.TFTransformOutput(graph).transform_features_layer()(raw)
    for feature, cuts in boundaries.items():
        assert len(cuts) == 3 and cuts == sorted(cuts)
        values = np.array([(tf.train.Example.FromString(r).features.feature[feature].float_list.value or [0.0])[0]
                           for r in records], dtype=np.float32)
        expected = np.searchsorted(np.array(cuts, dtype=np.float32), values, side="right")
        np.testing.assert_array_equal(np.asarray(transformed[feature]).reshape(-1), expected)
    vocabularies = readers.read_vocabularies(graph)
    output = tft.TFTransformOutput(graph)
    for name, (size, top) in vocabularies.items():
        assert output.vocabulary_size_by_name(name) == size
        assert [v.decode() for v in output.vocabulary_by_name(name)[:len(top)]] == top


TOY = textwrap.dedent("""
    from pipeline import Pipeline
    from tests.pipeline.toy_components import Add, Source

    def create_pipeline(*, root, beam_pipeline_args=(), metadata=None, fail=False):
        source = Source(2)
        return Pipeline("toy-report", root, [source, Add(source.outputs["examples"], add=1, fail=fail)],
                        beam_pipeline_args=beam_pipeline_args, metadata=metadata)
""")


def test_run_prints_the_report_path_also_after_a_failure_and_not_with_no_report(tmp_path):
    path, root = tmp_path / "toy.py", tmp_path / "root"
    path.write_text(TOY)
    failed = cli("run", str(path), "--root", str(root), "--set", "fail=true", timeout=120)
    assert failed.returncode == 1
    report = root / "reports" / "run-1.html"
    assert f"report: {report}" in failed.stdout
    text = report.read_text(encoding="utf-8")
    assert "FAILED" in text and "Add got fail=True" in text
    # A pipeline without the standard components: every such section says so.
    assert "No StatisticsGen ran in run 1" in text and "No Pusher ran in run 1" in text

    ok = cli("run", str(path), "--root", str(root), "--no-report", timeout=120)
    assert ok.returncode == 0 and "report:" not in ok.stdout
    assert not (root / "reports" / "run-2.html").exists()


def test_bad_roots_and_runs_get_one_line_naming_them(tmp_path, capsys):
    from pipeline.metadata import MetadataStore

    assert cli_main(["report", "--root", str(tmp_path / "none")]) == 2
    assert "report got --root=" in capsys.readouterr().err
    MetadataStore(f"sqlite:///{tmp_path}/metadata.sqlite")
    assert cli_main(["report", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"report found no runs in --root={str(tmp_path)!r}" in err and "How to fix" in err
    assert err.count("\n") == 1
    store = MetadataStore(f"sqlite:///{tmp_path}/metadata.sqlite")
    store.finish_run(store.start_run("p"), "COMPLETE")
    assert cli_main(["report", "--root", str(tmp_path), "--run", "7"]) == 2
    err = capsys.readouterr().err
    assert "report got --run=7" in err and "has only run 1" in err and "How to fix" in err
    assert cli_main(["report", "--root", str(tmp_path), "--out", str(tmp_path / "r.html")]) == 0
    assert "No ExampleValidator ran in run 1" in (tmp_path / "r.html").read_text(encoding="utf-8")


def test_records_reader_stops_at_a_record_cut_short(tmp_path):
    import struct

    path = tmp_path / "events"
    whole = struct.pack("<Q", 3) + b"\0" * 4 + b"abc" + b"\0" * 4
    path.write_bytes(whole + struct.pack("<Q", 10) + b"\0" * 4 + b"abc")  # a record still being written
    assert list(readers.read_records(str(path))) == [b"abc"]


def test_chromium_helper_reports_console_errors_and_leaves_no_process(tmp_path):
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} is not installed")
    page = tmp_path / "p.html"
    page.write_text('<!DOCTYPE html><link rel="icon" href="data:,"><p>x</p><script>console.error("boom")</script>')
    result = load_page(page.as_uri(), evaluate="document.querySelectorAll('p').length", timeout_s=60)
    assert result.errors == ["console.error: boom"] and result.value == 1
    assert processes_using(result.profile) == [] and not os.path.exists(result.profile)
    with pytest.raises(RuntimeError, match="TimeoutError"):  # a deadline that passes still ends the browser
        load_page(page.as_uri(), timeout_s=0.01)


def test_threshold_rows_judge_values_and_changes_against_the_baseline():
    from pipeline.report_model import threshold_rows, tfma_name

    assert [tfma_name(n) for n in ("AUC", "AUCPrecisionRecall", "MeanSquaredError", "Calibration")] == [
        "auc", "auc_precision_recall", "mean_squared_error", "calibration"]
    thresholds = [{"metric": "AUC", "lower_bound": 0.9, "upper_bound": None, "min_change": -0.01,
                   "higher_is_better": True},
                  {"metric": "MeanSquaredError", "lower_bound": None, "upper_bound": None, "min_change": 0.5,
                   "higher_is_better": False}]
    metrics = {"auc": 0.95, "auc_diff": -0.02, "mean_squared_error": 3.0, "mean_squared_error_diff": -1.0}
    rows, chart_rows, classes = threshold_rows(thresholds, metrics, has_baseline=True)
    assert [(r[0], r[1], r[4]) for r in rows] == [
        ("AUC", "value", "passed"), ("AUC", "change vs baseline", "failed"),  # 0.02 worse: more than 0.01
        ("MeanSquaredError", "change vs baseline", "passed")]  # 1.0 lower: at least 0.5 better
    assert classes == ["good", "bad", "good"] and len(chart_rows) == 3
    rows, chart_rows, classes = threshold_rows(thresholds, {"auc": 0.8}, has_baseline=False)
    assert [r[3:] for r in rows] == [[0.8, "failed"], ["no baseline", "skipped"], ["no baseline", "skipped"]]
    assert len(chart_rows) == 1


POINTS = {"data": {"values": [{"a": 1}, {"a": 2}]}, "mark": {"type": "line", "clip": True},
          "encoding": {"x": {"field": "a", "type": "quantitative"}}}


def test_svg_worker_draws_charts_in_order_and_notes_a_refused_one():
    from pipeline import report_svg

    with report_svg.rendering() as renderer:
        assert renderer is not None
        page = "".join(f"<div>{report_svg.submit(spec)}</div>" for spec in (POINTS, {"mark": "nonsense"}, POINTS))
        page = renderer.fill(page)
    first, refused, third = re.findall(r"<div>(.*?)</div>", page, flags=re.S)
    assert first.startswith("<svg") and third.startswith("<svg") and "could not be drawn" in refused
    assert "xmlns" not in first and "http" not in first
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert ids and len(ids) == len(set(ids))  # clip paths of the two charts keep apart
    assert all(f"url(#{i})" in page for i in ids if i.startswith("c") and "clip" in i)


def test_svg_worker_that_exits_leaves_the_charts_to_this_process():
    from pipeline import report_svg

    with report_svg.rendering() as renderer:
        renderer._process.kill()
        renderer._process.wait()
        page = renderer.fill("<div>" + report_svg.submit(POINTS) + "</div>")
    assert page.startswith("<div><svg")
