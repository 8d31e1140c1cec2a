"""RunConfig(steps_per_loop=None), the default: runs as long as every hook allows.

The standard hooks say when they next need a run's values
(`SessionRunHook.steps_until_needed`); a hook that does not say sees every step,
as under tf.estimator; a NaN loss ends a run at its step.
"""

import logging
import re

import numpy as np
import pytest
import tensorflow as tf

import trainer
from trainer import _session
from tests.trainer import models


def make(path, model_fn=models.linear_model_fn, **config):
    return trainer.Estimator(model_fn, model_dir=str(path), params={}, config=trainer.RunConfig(**config))


def data():
    return tf.data.Dataset.from_tensor_slices(({"x": models.X}, models.Y)).repeat().batch(32)


class Runs(trainer.SessionRunHook):
    """Records each run's length and last global step; fine with any run length."""

    def __init__(self, until=None):
        self.steps, self.global_steps = [], []
        self._until = until

    def before_run(self, run_context):
        return trainer.SessionRunArgs("global_step")

    def after_run(self, run_context, run_values):
        self.steps.append(run_context.steps)
        self.global_steps.append(int(run_values.results))

    def steps_until_needed(self, global_step):
        return self._until


class EveryStep(trainer.SessionRunHook):
    """A tf.estimator-style hook: does not override steps_until_needed."""

    def __init__(self):
        self.global_steps = []

    def before_run(self, run_context):
        return trainer.SessionRunArgs("global_step")

    def after_run(self, run_context, run_values):
        self.global_steps.append(int(run_values.results))


def test_default_runs_many_steps_per_call_and_trains_like_one_step_per_call(tmp_path):
    auto, single = make(tmp_path / "auto"), make(tmp_path / "one", steps_per_loop=1)
    runs = Runs()
    auto.train(data, steps=300, hooks=[runs])
    single.train(data, steps=300)
    assert auto.get_variable_value("global_step") == 300
    assert sum(runs.steps) == 300 and runs.global_steps[-1] == 300
    # The first run is one step; then runs double while they are fast, and the logging and
    # step-counter hooks (every 100 steps) end runs on their steps: 1, 101, 201.
    assert runs.steps[0] == 1 and len(runs.steps) < 30, runs.steps
    assert {1, 101, 201} <= set(runs.global_steps), runs.global_steps
    # Same arithmetic in the same order: the weights agree to float32 rounding.
    np.testing.assert_allclose(auto.get_variable_value("linear/weights"),
                               single.get_variable_value("linear/weights"), rtol=1e-6, atol=1e-7)


def test_a_hook_that_does_not_say_sees_every_step(tmp_path):
    hook = EveryStep()
    make(tmp_path).train(data, steps=40, hooks=[hook])
    assert hook.global_steps == list(range(1, 41))


def test_checkpoints_land_on_their_steps(tmp_path):
    est = make(tmp_path, save_checkpoints_steps=30, keep_checkpoint_max=None)
    runs = Runs()
    est.train(data, steps=100, hooks=[runs])
    saved = sorted(int(p.name[len("model.ckpt-"):-len(".index")]) for p in tmp_path.glob("model.ckpt-*.index"))
    assert saved == [0, 30, 60, 90, 100]
    assert {30, 60, 90} <= set(runs.global_steps)


def test_logging_every_n_iter_logs_the_steps_tf_estimator_logged(tmp_path, caplog):
    est = make(tmp_path, log_step_count_steps=25)
    with caplog.at_level(logging.INFO, logger="trainer"):
        est.train(data, steps=80)
    logged = [int(m) for m in re.findall(r"step = (\d+)", caplog.text)]
    assert logged == [1, 26, 51, 76]


def nan_from_step_37(features, labels, mode, params):
    x = tf.cast(features["x"], tf.float32)
    w = tf.Variable(lambda: tf.zeros([3, 1]), name="linear/weights")
    y = tf.squeeze(tf.matmul(x, w), -1)
    loss = tf.reduce_mean(tf.square(y - labels))
    step = trainer.get_global_step()
    # The loss is NaN from the 37th step on (the global step before it is 36).
    loss = tf.where(step >= 36, tf.constant(np.nan, tf.float32), loss)
    opt = trainer.optimizers.SGD(0.01)
    return trainer.EstimatorSpec(mode, loss=loss, train_op=opt.minimize(loss, global_step=step))


def test_a_nan_loss_ends_the_run_at_its_step(tmp_path):
    stopped = {}
    for name, config in (("auto", {}), ("one", {"steps_per_loop": 1})):
        with pytest.raises(trainer.NanLossDuringTrainingError, match="global step 37") as raised:
            make(tmp_path / name, nan_from_step_37, **config).train(data, steps=300)
        stopped[name] = raised.value.global_step
    assert stopped == {"auto": 37, "one": 37}


def test_slow_runs_shrink_back_to_one_step(tmp_path, monkeypatch):
    monkeypatch.setattr(_session, "AUTO_TARGET_S", 0.0)  # every run counts as too slow
    runs = Runs()
    make(tmp_path).train(data, steps=20, hooks=[runs])
    assert runs.steps == [1] * 20


def test_a_fixed_steps_per_loop_is_kept(tmp_path):
    runs = Runs()
    make(tmp_path, steps_per_loop=7).train(data, steps=30, hooks=[runs])
    assert runs.steps == [7, 7, 7, 7, 2]


@pytest.mark.parametrize("value", [0, 1.5, True, "auto"])
def test_bad_steps_per_loop_is_named(value):
    with pytest.raises(ValueError, match="steps_per_loop"):
        trainer.RunConfig(steps_per_loop=value)


def test_one_step_runs_read_each_train_calls_own_input(tmp_path):
    """steps_per_loop=1 calls the step's concrete function, looked up once per iterator: a later
    train call (a new input_fn, a new iterator) must step through its own data, not the first's."""
    def model_fn(features, labels, mode):
        w = tf.Variable(lambda: tf.zeros([]), name="w")
        loss = tf.reduce_mean(w * features["x"])  # d loss / d w = mean(x)
        return trainer.EstimatorSpec(mode, loss=loss,
                                     train_op=trainer.optimizers.SGD(1.0).minimize(loss, trainer.get_global_step()))

    def constant(value):
        return lambda: tf.data.Dataset.from_tensors(({"x": tf.fill([4], value)}, tf.zeros([4]))).repeat()

    est = make(tmp_path, model_fn=model_fn, steps_per_loop=1)
    est.train(constant(1.0), steps=3)
    est.train(constant(10.0), steps=2)
    np.testing.assert_allclose(est.get_variable_value("w"), -(3 * 1.0 + 2 * 10.0))
    assert est.get_variable_value("global_step") == 5
