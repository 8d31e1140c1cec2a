"""A pipeline root that is an object-store URL (pipeline/staging.py, pipeline/launcher.py).

The filesystem is TensorFlow's in-memory ``ram://`` (reached through ``tf.io.gfile``, as
``gs://`` or ``s3://`` would be): no POSIX calls work on it and it has no atomic rename, so a
test passes only if every artifact, log and report goes through `components.fileio` and the
commit point is the metadata store. ``ram://`` lives in this process only, so the runs are
in process (`pipeline.runner.LocalRunner` and `launch_node`).

- toy components: outputs uploaded under ``<root>/<node>/<key>/<execution id>``, inputs
  downloaded once per artifact, logs uploaded, cache hits, a failed execution's outputs
  kept as ``failed-<id>``, and an upload cut short that is never published and is removed
  by the next execution;
- the wine pipeline (real Beam, TFT, Trainer, Evaluator, Pusher) to a pushed model whose
  every artifact is under the URL root, its report uploaded, and a cached rerun.
"""

from __future__ import annotations

import os
import uuid

import pytest

from pipeline.dsl import Pipeline
from pipeline.launcher import PipelineRunError, launch_node
from pipeline.metadata import COMPLETE, FAILED, MetadataStore
from pipeline.runner import LocalRunner
from tests.pipeline.toy_components import Add, Source

tf = pytest.importorskip("tensorflow")
gfile = tf.io.gfile


@pytest.fixture
def ram_root(tmp_path, monkeypatch):
    """A fresh ``ram://`` root, a local SQLite store and a private staging dir."""
    monkeypatch.setenv("PIPELINE_STAGING_DIR", str(tmp_path / "staging"))
    root = f"ram://bucket-{uuid.uuid4().hex[:8]}/toy"
    yield root, f"sqlite:///{tmp_path / 'metadata.sqlite'}"
    _remove(root)


def _remove(root):
    """Frees the in-memory files (ram:// deletes files one by one; its directories are implicit)."""
    from components import fileio

    for directory, _, files in list(fileio.walk(root)):
        for name in files:
            gfile.remove(f"{directory}/{name}")


def _toy(root, metadata, value=1, add=10, fail=False):
    source = Source(value)
    return Pipeline("toy", root, [source, Add(source.outputs["examples"], add=add, fail=fail)], metadata=metadata)


def _read(url):
    with gfile.GFile(url) as f:
        return f.read()


def test_a_url_root_needs_a_metadata_url():
    with pytest.raises(ValueError, match=r"Pipeline\(root='gs://b/p'\) needs metadata=URL.*postgresql"):
        Pipeline("p", root="gs://b/p", components=[])
    assert Pipeline("p", root="gs://b/p/", components=[], metadata="sqlite:////tmp/m.sqlite").root == "gs://b/p"


def test_outputs_are_uploaded_inputs_downloaded_and_logs_uploaded(ram_root, tmp_path):
    root, metadata = ram_root
    result = LocalRunner().run(_toy(root, metadata, value=3))
    add = result.outputs["Add"]["statistics"]
    source = result.outputs["Source"]["examples"]
    store = MetadataStore(metadata)
    ids = {e["component"]: e["id"] for e in store.executions_of_run(result.run_id)}
    assert source.uri == f"{root}/Source/examples/{ids['Source']}"
    assert add.uri == f"{root}/Add/statistics/{ids['Add']}"
    assert _read(f"{source.uri}/value.txt") == "3"
    assert _read(f"{add.uri}/value.txt") == "13" and add.properties["total"] == 13
    # Published as the URL; nothing but the artifacts' dirs and the logs under the root.
    assert [a.uri for a in store.published("toy", "Add", "statistics")] == [add.uri]
    assert sorted(gfile.listdir(root)) == ["Add", "Source", "logs"]
    assert gfile.listdir(f"{root}/Add/statistics") == [str(ids["Add"])]
    assert sorted(gfile.listdir(f"{root}/logs/{result.run_id}")) == ["Add.log", "Source.log"]
    # The input was downloaded once into the staging dir, under its artifact id; scratch is gone.
    staging = next((tmp_path / "staging" / "pipeline-staging").iterdir())
    assert (staging / "artifacts" / str(source.id) / "value.txt").read_text() == "3"
    assert [p for p in (staging / "outputs").rglob("*") if p.is_file()] == []
    assert not (tmp_path / "toy").exists() and not os.path.exists("ram:")

    again = LocalRunner().run(_toy(root, metadata, value=3))
    assert again.states == {"Source": "CACHED", "Add": "CACHED"}
    assert again.outputs["Add"]["statistics"].uri == add.uri
    # A changed parameter reruns Add only, reading the same (already downloaded) Source output.
    changed = LocalRunner().run(_toy(root, metadata, value=3, add=20))
    assert changed.states == {"Source": "CACHED", "Add": "COMPLETE"}
    assert _read(f"{changed.outputs['Add']['statistics'].uri}/value.txt") == "23"


def test_a_failed_execution_that_wrote_nothing_leaves_no_dir_and_uploads_its_log(ram_root):
    root, metadata = ram_root
    launch_node(_toy(root, metadata), "Source", "run-1")
    with pytest.raises(PipelineRunError, match="Add got fail=True") as caught:
        launch_node(_toy(root, metadata, fail=True), "Add", "run-1")
    # Add wrote nothing before failing: no failed-<id> dir, no unpublished dir, no staging leftovers.
    assert not gfile.exists(f"{root}/Add")
    run_id = MetadataStore(metadata).run_id_of("toy", "run-1")
    assert caught.value.log_path and os.path.isfile(caught.value.log_path)  # the local copy
    with open(caught.value.log_path) as f:
        assert _read(f"{root}/logs/{run_id}/Add.log") == f.read()  # uploaded, failed or not
    ok = launch_node(_toy(root, metadata), "Add", "run-1")
    assert ok.state == COMPLETE and _read(f"{ok.outputs['statistics'].uri}/value.txt") == "11"


def test_an_upload_cut_short_is_never_published_and_is_removed_next_time(ram_root, monkeypatch):
    import pipeline.launcher as launcher

    root, metadata = ram_root
    launch_node(_toy(root, metadata), "Source", "run-1")
    real_upload = launcher.upload

    def upload_then_fail(local, url):
        real_upload(local, url)  # every byte reached the root ...
        raise ConnectionError("object store went away")  # ... but the upload did not return

    monkeypatch.setattr(launcher, "upload", upload_then_fail)
    with pytest.raises(PipelineRunError, match="ConnectionError: object store went away") as caught:
        launch_node(_toy(root, metadata), "Add", "run-1")
    failed_id = caught.value.execution_id
    store = MetadataStore(metadata)
    assert store.execution_state(failed_id) == FAILED
    assert store.published("toy", "Add", "statistics") == []  # readers never see it
    assert gfile.exists(f"{root}/Add/statistics/{failed_id}/value.txt")  # the upload's leftovers
    monkeypatch.setattr(launcher, "upload", real_upload)
    ok = launch_node(_toy(root, metadata), "Add", "run-1")
    assert gfile.listdir(f"{root}/Add/statistics") == [str(ok.execution_id)]  # the leftovers are gone
    assert [a.uri for a in store.published("toy", "Add", "statistics")] == [ok.outputs["statistics"].uri]


def test_failed_outputs_are_uploaded_as_failed_dirs(ram_root, monkeypatch):
    """An executor that wrote files, then failed: they are kept under ``failed-<id>`` on the root
    (a staging dir on a pod that is gone would lose them) and named in the error."""
    import tests.pipeline.toy_components as toy

    root, metadata = ram_root
    launch_node(_toy(root, metadata), "Source", "run-1")

    def executor(self):
        def run(ctx):
            with open(os.path.join(ctx.outputs["statistics"].uri, "partial.txt"), "w") as f:
                f.write("half")
            raise RuntimeError(f"gave up after writing {ctx.outputs['statistics'].uri}/partial.txt")
        return run

    original = toy.Add.executor
    monkeypatch.setattr(toy.Add, "executor", executor)
    with pytest.raises(PipelineRunError) as caught:
        launch_node(_toy(root, metadata), "Add", "run-1")
    kept = f"{root}/Add/statistics/failed-{caught.value.execution_id}"
    assert f"{kept}/partial.txt" in str(caught.value)
    assert _read(f"{kept}/partial.txt") == "half"
    monkeypatch.setattr(toy.Add, "executor", original)
    ok = launch_node(_toy(root, metadata), "Add", "run-1")
    assert gfile.listdir(f"{root}/Add/statistics") == [str(ok.execution_id)]


@pytest.mark.slow
def test_the_wine_pipeline_runs_to_a_pushed_model_on_a_url_root(ram_root, tmp_path):
    """Every real component (Beam, TFT, the Trainer, TFMA, InfraValidator, Pusher) on local
    staging copies; every artifact, the pushed model, the logs and the report on the URL root."""
    from pipeline.report import report_after_run
    from pipeline.yaml_spec import build_pipeline, load_spec
    from tests.pipeline.e2e_helpers import ALL, MODEL_NODES, REPO

    root, metadata = ram_root
    root = root.replace("/toy", "/wine")
    spec = load_spec(os.path.join(REPO, "pipeline", "examples", "wine.yaml"))

    def wine():
        return build_pipeline(spec, root=root, metadata=metadata, beam_pipeline_args=["--direct_num_workers=1"])

    try:
        result = LocalRunner().run(wine())
        assert result.executed == ALL + MODEL_NODES
        store = MetadataStore(metadata)
        for node, outputs in result.outputs.items():
            for key, art in outputs.items():
                if node != "LatestBlessedModelResolver":
                    assert art.uri.startswith(f"{root}/{node}/{key}/"), (node, key, art.uri)
                    assert gfile.isdir(art.uri)
        blessing = result.outputs["Evaluator"]["blessing"].properties
        assert blessing["verdict"] == "BLESSED", blessing["reason"]
        pushed = result.outputs["Pusher"]["pushed_model"].properties
        assert pushed["pushed"] is True and pushed["pushed_destination"].startswith(f"{root}/serving/wine/")
        assert gfile.exists(f"{pushed['pushed_destination']}/saved_model.pb")
        served = tf.saved_model.load(pushed["pushed_destination"])  # TensorFlow reads the URL itself
        assert "serving_default" in served.signatures
        assert sorted(gfile.listdir(f"{root}/logs/{result.run_id}")) == sorted(f"{n}.log" for n in result.states)

        page = report_after_run(wine(), run_id=result.run_id)
        assert not fileio_is_url(page) and os.path.isfile(page)
        with open(page, encoding="utf-8") as f:
            html = f.read()
        assert html == _read(f"{root}/reports/run-{result.run_id}.html")
        assert f"Root <code>{root}</code>" in html and "BLESSED" in html  # read from the downloaded artifacts

        again = LocalRunner().run(wine())
        assert set(again.cached) == {n for n in ALL + MODEL_NODES if not n.endswith("Resolver")}
        assert [e for e in store.list_runs()][0]["state"] == COMPLETE
    finally:
        _remove(root)


def fileio_is_url(path):
    from components import fileio

    return fileio.is_url(path)


def test_listing_a_url_dir_never_answers_a_sibling_with_the_same_prefix(ram_root):
    """ram:// lists by key prefix: ``dir/12`` would also answer ``3`` for ``dir/123/...``."""
    from components import fileio

    root, _ = ram_root
    for path in (f"{root}/m/12/a.txt", f"{root}/m/123/b.txt", f"{root}/model_run/1/c.txt"):
        fileio.makedirs(path.rsplit("/", 1)[0])
        with fileio.open_file(path, "w") as f:
            f.write("x")
    assert fileio.listdir(f"{root}/m/12") == ["a.txt"]
    assert list(fileio.walk(f"{root}/m/12")) == [(f"{root}/m/12", [], ["a.txt"])]
    assert fileio.listdir(f"{root}/model") == []
    assert sorted(fileio.listdir(f"{root}/m")) == ["12", "123"]


def test_a_new_metadata_store_over_the_same_root_never_reads_the_old_stores_downloads(ram_root, tmp_path):
    """Downloads are kept by artifact id; a fresh store numbers its artifacts from 1 again."""
    root, metadata = ram_root
    assert LocalRunner().run(_toy(root, metadata, value=3)).outputs["Add"]["statistics"].properties["total"] == 13
    fresh = f"sqlite:///{tmp_path / 'another.sqlite'}"
    result = LocalRunner().run(_toy(root, fresh, value=5))
    assert result.outputs["Add"]["statistics"].properties["total"] == 15
    assert len(list((tmp_path / "staging" / "pipeline-staging").iterdir())) == 2
