import os

import numpy as np
import pytest
import tensorflow as tf

import trainer
from tests.trainer import models

FEATURE_SPEC = {"x": tf.io.FixedLenFeature([3], tf.float32)}
RECEIVER = trainer.export.build_parsing_serving_input_receiver_fn(FEATURE_SPEC)


def make(tmp_path, **config):
    config.setdefault("save_checkpoints_steps", 20)
    return trainer.Estimator(models.linear_model_fn, model_dir=str(tmp_path / "model"),
                             config=trainer.RunConfig(**config))


def test_train_and_evaluate_evaluates_each_checkpoint_and_exports(tmp_path):
    est = make(tmp_path)
    exporters = [trainer.LatestExporter("latest", RECEIVER, exports_to_keep=2),
                 trainer.FinalExporter("final", RECEIVER),
                 trainer.BestExporter("best", RECEIVER)]
    train_spec = trainer.TrainSpec(models.train_input_fn, max_steps=100)
    eval_spec = trainer.EvalSpec(models.eval_input_fn, steps=None, throttle_secs=0,
                                 exporters=exporters)
    result, exports = trainer.train_and_evaluate(est, train_spec, eval_spec)
    assert result["global_step"] == 100
    # Every checkpoint after the initial one was evaluated.
    assert sorted(trainer.hooks.read_eval_metrics(est.eval_dir())) == [20, 40, 60, 80, 100]
    export_root = os.path.join(est.model_dir, "export")
    assert len(os.listdir(os.path.join(export_root, "latest"))) == 2
    assert len(os.listdir(os.path.join(export_root, "final"))) == 1
    # Loss keeps falling, so the best exporter exported at every evaluation (kept 5).
    assert len(os.listdir(os.path.join(export_root, "best"))) == 5
    assert all(p.startswith(export_root) for p in exports)
    loaded = tf.saved_model.load(exports[-1])
    assert "serving_default" in loaded.signatures


def test_throttle_skips_evaluations(tmp_path):
    est = make(tmp_path)
    result, _ = trainer.train_and_evaluate(
        est, trainer.TrainSpec(models.train_input_fn, max_steps=100),
        trainer.EvalSpec(models.eval_input_fn, steps=2, throttle_secs=3600))
    # Only the first checkpoint after the start (throttled afterwards) and the final one.
    assert sorted(trainer.hooks.read_eval_metrics(est.eval_dir())) == [20, 100]
    assert result["global_step"] == 100


def test_eval_on_training_input_too(tmp_path):
    est = make(tmp_path)
    specs = [trainer.EvalSpec(models.eval_input_fn, steps=None, throttle_secs=0),
             trainer.EvalSpec(lambda: models.train_input_fn(64), steps=3, name="train", throttle_secs=0)]
    result, _ = trainer.train_and_evaluate(est, trainer.TrainSpec(models.train_input_fn, max_steps=40), specs)
    assert result["global_step"] == 40
    assert sorted(trainer.hooks.read_eval_metrics(est.eval_dir("train"))) == [20, 40]


def test_best_exporter_keeps_best_only(tmp_path):
    est = make(tmp_path)
    est.train(models.train_input_fn, steps=20)
    first = est.evaluate(models.eval_input_fn)
    exporter = trainer.BestExporter("best", RECEIVER)
    export_dir = str(tmp_path / "best")
    assert exporter.export(est, export_dir, est.latest_checkpoint(), first, False) is not None
    worse = dict(first, loss=first["loss"] + 1.0)
    assert exporter.export(est, export_dir, est.latest_checkpoint(), worse, False) is None
    better = dict(first, loss=first["loss"] - 1.0)
    assert exporter.export(est, export_dir, est.latest_checkpoint(), better, False) is not None
    assert len(os.listdir(export_dir)) == 2


def test_early_stopping_inside_train_and_evaluate(tmp_path):
    est = make(tmp_path)
    stop = trainer.hooks.stop_if_lower_hook(est, "loss", threshold=1e9, run_every_steps=1,
                                            run_every_secs=None)
    result, _ = trainer.train_and_evaluate(
        est, trainer.TrainSpec(models.train_input_fn, max_steps=1000, hooks=[stop]),
        trainer.EvalSpec(models.eval_input_fn, throttle_secs=0))
    assert result["global_step"] < 1000


def test_spec_errors():
    with pytest.raises(ValueError, match="TrainSpec got max_steps=0"):
        trainer.TrainSpec(models.train_input_fn, max_steps=0)
    with pytest.raises(TypeError, match="TrainSpec got input_fn=3"):
        trainer.TrainSpec(3)
    with pytest.raises(ValueError, match="EvalSpec got throttle_secs=-1"):
        trainer.EvalSpec(models.eval_input_fn, throttle_secs=-1)
    with pytest.raises(ValueError, match="duplicate names"):
        trainer.EvalSpec(models.eval_input_fn, exporters=[trainer.LatestExporter("a", RECEIVER),
                                                          trainer.FinalExporter("a", RECEIVER)])
    with pytest.raises(TypeError, match="expected a trainer.EvalSpec"):
        trainer.train_and_evaluate(None, trainer.TrainSpec(models.train_input_fn), object())
    with pytest.raises(ValueError, match="exports_to_keep=0"):
        trainer.LatestExporter("x", RECEIVER, exports_to_keep=0)
    with pytest.raises(ValueError, match=r"needs 'loss' in best_eval_result"):
        trainer.exporter._loss_smaller({}, {"loss": 1.0})  # the default compare_fn


def test_a_worker_without_a_multi_worker_strategy_is_refused(tmp_path, monkeypatch):
    import json
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1", "b:1"]},
                                                "task": {"type": "worker", "index": 0}}))
    est = make(tmp_path)
    with pytest.raises(NotImplementedError, match="without train_distribute=tf.distribute.MultiWorkerMirroredStrategy"):
        trainer.train_and_evaluate(est, trainer.TrainSpec(models.train_input_fn, max_steps=1),
                                   trainer.EvalSpec(models.eval_input_fn))
    np.testing.assert_equal(est.latest_checkpoint(), None)


def test_evaluator_task_evaluates_new_checkpoints_and_stops_at_max_steps(tmp_path, monkeypatch):
    """The evaluator polls model_dir; between its polls this test plays the workers."""
    import json

    workers_est = make(tmp_path)
    workers_est.train(models.train_input_fn, max_steps=20)  # checkpoint 20 is there at the start
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1", "b:1"]},
                                                "task": {"type": "evaluator", "index": 0}}))
    evaluator_est = make(tmp_path)
    assert evaluator_est.config.task_type == "evaluator"
    polls = []

    def workers(seconds):
        polls.append(seconds)
        if len(polls) in (2, 3):  # after each evaluation, the workers write the next checkpoint
            workers_est.train(models.train_input_fn, max_steps=20 * len(polls))
        assert len(polls) < 50, "the evaluator did not stop"

    result, exports = trainer.training.run_evaluator(
        evaluator_est, trainer.TrainSpec(models.train_input_fn, max_steps=60),
        [trainer.EvalSpec(models.eval_input_fn, steps=None, start_delay_secs=3, throttle_secs=0,
                          exporters=trainer.LatestExporter("latest", RECEIVER))],
        sleep=workers, poll_secs=0.01)
    assert polls[0] == 3  # start_delay_secs
    assert result["global_step"] == 60
    assert sorted(trainer.hooks.read_eval_metrics(evaluator_est.eval_dir())) == [20, 40, 60]
    assert len(exports) == 3 and all("export/latest" in path for path in exports)
    # One evaluation program, built once and only restored per checkpoint.
    assert sum(1 for key in evaluator_est._programs if key[0] == trainer.ModeKeys.EVAL) == 1


def test_a_checkpoint_removed_before_the_evaluator_reads_it_is_skipped(tmp_path, caplog):
    import logging

    est = make(tmp_path, keep_checkpoint_max=1)
    est.train(models.train_input_fn, max_steps=40)
    gone = est.latest_checkpoint()
    for path in tf.io.gfile.glob(gone + ".*"):
        tf.io.gfile.remove(path)
    calls = []

    def once(seconds):
        calls.append(seconds)
        if len(calls) > 1:
            raise StopIteration  # end the (otherwise endless) loop: max_steps=None

    with caplog.at_level(logging.WARNING, logger="trainer"), pytest.raises(StopIteration):
        trainer.training.run_evaluator(
            est, trainer.TrainSpec(models.train_input_fn, max_steps=None),
            [trainer.EvalSpec(models.eval_input_fn, start_delay_secs=0)], sleep=once, poll_secs=0,
            latest=lambda model_dir: gone)
    assert "skipping checkpoint" in caplog.text and gone in caplog.text
