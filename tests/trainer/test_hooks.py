import time

import numpy as np
import pytest
import tensorflow as tf

import trainer
from tests.trainer import models


def make(tmp_path, model_fn=models.linear_model_fn, **config):
    return trainer.Estimator(model_fn, model_dir=str(tmp_path / "model"),
                             config=trainer.RunConfig(**config))


class RecordingHook(trainer.SessionRunHook):
    def __init__(self, fetches="loss", stop_after=None):
        self.calls = []
        self.results = []
        self._fetches = fetches
        self._stop_after = stop_after

    def begin(self):
        self.calls.append("begin")

    def after_create_session(self, session, coord):
        self.calls.append("after_create_session")
        self.initial_step = session.global_step

    def before_run(self, run_context):
        self.calls.append("before_run")
        return trainer.SessionRunArgs(self._fetches)

    def after_run(self, run_context, run_values):
        self.calls.append("after_run")
        self.results.append(run_values.results)
        if self._stop_after and len(self.results) >= self._stop_after:
            run_context.request_stop()

    def end(self, session):
        self.calls.append("end")


def test_call_order_and_fetches(tmp_path):
    hook = RecordingHook(fetches={"loss": "loss", "step": "global_step"})
    make(tmp_path).train(models.train_input_fn, hooks=[hook], steps=3)
    assert hook.calls == ["begin", "after_create_session"] + ["before_run", "after_run"] * 3 + ["end"]
    assert [r["step"] for r in hook.results] == [1, 2, 3]
    assert all(np.isfinite(r["loss"]) for r in hook.results)


def test_request_stop(tmp_path):
    hook = RecordingHook(stop_after=4)
    est = make(tmp_path)
    est.train(models.train_input_fn, hooks=[hook], steps=100)
    assert est.get_variable_value("global_step") == 4
    assert hook.calls[-1] == "end"


def test_hook_fetches_named_graph_tensor_and_prediction(tmp_path):
    def model_fn(features, labels, mode):
        spec = models.linear_model_fn(features, labels, mode, {})
        tf.identity(spec.loss * 2.0, name="double_loss")
        return spec

    hook = RecordingHook(fetches=["loss", "double_loss"])
    make(tmp_path, model_fn).train(models.train_input_fn, hooks=[hook], steps=2)
    for loss, double in hook.results:
        assert double == pytest.approx(2 * loss)
    missing = RecordingHook(fetches="no_such_tensor")
    with pytest.raises(ValueError, match=r"asked for the tensor 'no_such_tensor'"):
        make(tmp_path / "b", model_fn).train(models.train_input_fn, hooks=[missing], steps=1)


def test_nan_loss_raises(tmp_path):
    def model_fn(features, labels, mode):
        spec = models.linear_model_fn(features, labels, mode, {})
        loss = spec.loss * np.float32("nan")
        return trainer.EstimatorSpec(mode, loss=loss, train_op=spec.train_op)

    with pytest.raises(trainer.NanLossDuringTrainingError, match="NaN loss during training"):
        make(tmp_path, model_fn).train(models.train_input_fn, steps=5)


def test_nan_tensor_hook_can_stop_instead(tmp_path):
    hook = trainer.NanTensorHook("loss", fail_on_nan_loss=False)
    context = trainer.SessionRunContext()
    hook.after_run(context, trainer.SessionRunValues(np.float32("nan"), None, None))
    assert context.stop_requested


def test_seeds_time_based_stop_hook_works_as_written(tmp_path):
    class TimeBasedStopHook(trainer.SessionRunHook):
        """Stops training after a wall-clock budget (the seeds' example)."""

        def __init__(self, run_time_secs):
            self._run_time_secs = run_time_secs

        def begin(self):
            self._start_time = time.time()

        def after_run(self, run_context, run_values):
            if time.time() - self._start_time >= self._run_time_secs:
                run_context.request_stop()

    est = make(tmp_path)
    started = time.time()
    est.train(models.train_input_fn, hooks=[TimeBasedStopHook(1.0)], steps=10_000_000)
    assert time.time() - started < 30
    assert 0 < est.get_variable_value("global_step") < 10_000_000


def test_checkpoint_listener_and_stop(tmp_path):
    class Listener(trainer.CheckpointSaverListener):
        def __init__(self):
            self.saved = []

        def after_save(self, session, global_step_value):
            self.saved.append(global_step_value)
            return global_step_value >= 20  # ask to stop

    listener = Listener()
    est = make(tmp_path, save_checkpoints_steps=10)
    est.train(models.train_input_fn, steps=100, saving_listeners=[listener])
    assert listener.saved == [0, 10, 20]
    assert est.get_variable_value("global_step") == 20


def test_stop_at_step_hook_and_steps_per_loop(tmp_path):
    est = make(tmp_path, steps_per_loop=7)
    est.train(models.train_input_fn, hooks=[trainer.StopAtStepHook(last_step=17)])
    assert est.get_variable_value("global_step") == 17


def test_logging_tensor_hook_logs(tmp_path, caplog):
    hook = trainer.LoggingTensorHook({"the_loss": "loss"}, every_n_iter=2)
    with caplog.at_level("INFO", logger="trainer"):
        make(tmp_path).train(models.train_input_fn, hooks=[hook], steps=5)
    assert sum("the_loss = " in r.message for r in caplog.records) == 3  # iterations 0, 2, 4


def test_training_hooks_from_estimator_spec(tmp_path):
    hook = RecordingHook()

    def model_fn(features, labels, mode):
        spec = models.linear_model_fn(features, labels, mode, {})
        return spec._replace(training_hooks=(hook,))

    make(tmp_path, model_fn).train(models.train_input_fn, steps=2)
    assert hook.calls.count("after_run") == 2


def test_evaluation_hooks_see_each_batch(tmp_path):
    est = make(tmp_path)
    est.train(models.train_input_fn, steps=1)
    hook = RecordingHook()
    est.evaluate(lambda: models.eval_input_fn(batch_size=64), hooks=[hook])
    assert hook.calls.count("after_run") == 4


def test_early_stopping_reads_eval_results(tmp_path):
    est = make(tmp_path, save_checkpoints_steps=10)
    est.train(models.train_input_fn, steps=10)
    est.evaluate(models.eval_input_fn)
    hook = trainer.hooks.stop_if_lower_hook(est, "loss", threshold=1e9, run_every_steps=1,
                                            run_every_secs=None)
    est.train(models.train_input_fn, hooks=[hook], steps=50)
    assert est.get_variable_value("global_step") == 11
    no_decrease = trainer.hooks.stop_if_no_decrease_hook(est, "loss", 0, run_every_steps=1,
                                                         run_every_secs=None)
    est.train(models.train_input_fn, hooks=[no_decrease], steps=50)
    assert est.get_variable_value("global_step") == 12


def test_hook_errors():
    with pytest.raises(ValueError, match="StopAtStepHook got num_steps=1 and last_step=2; give only one"):
        trainer.StopAtStepHook(num_steps=1, last_step=2)
    with pytest.raises(ValueError, match="exactly one of every_n_iter and every_n_secs"):
        trainer.LoggingTensorHook(["loss"])
    with pytest.raises(TypeError, match="expected a tensor name such as 'loss'"):
        trainer.NanTensorHook(tf.constant(1.0))
    with pytest.raises(ValueError, match="TF2 has no feeding"):
        trainer.SessionRunArgs("loss", feed_dict={"x": 1})


def test_non_hook_is_rejected(tmp_path):
    with pytest.raises(TypeError, match="hooks must subclass trainer.SessionRunHook"):
        make(tmp_path).train(models.train_input_fn, hooks=[object()], steps=1)


def test_logging_tensor_hook_built_in_the_model_fn_with_tensors_as_tf_estimator_users_did(tmp_path, caplog):
    import logging

    def model_fn(features, labels, mode):
        spec = models.linear_model_fn(features, labels, mode, {})
        if mode != trainer.ModeKeys.TRAIN:
            return spec
        doubled = spec.loss * 2.0
        hook = trainer.LoggingTensorHook({"twice_loss": doubled, "step": "global_step"}, every_n_iter=1)
        return trainer.EstimatorSpec(mode, loss=spec.loss, train_op=spec.train_op, training_hooks=[hook])

    with caplog.at_level(logging.INFO):
        make(tmp_path, model_fn).train(models.train_input_fn, steps=3)
    logged = [r.getMessage() for r in caplog.records if "twice_loss = " in r.getMessage()]
    assert len(logged) == 3 and all("step = " in line for line in logged)
    with pytest.raises(TypeError, match=r"expected a tensor name \(a string\) or a tensor built inside the model_fn"):
        trainer.LoggingTensorHook([tf.constant(1.0)], every_n_iter=1)
