"""Bad distribution settings get a one-line error saying how to fix them (issue 9, section 5).

These run in the test process, on its one CPU device: a MirroredStrategy over that device
has one replica, which is enough to reach each check.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

import trainer
from trainer import _distribute
from trainer.mode_keys import ModeKeys


def model_fn(features, labels, mode):
    w = tf.Variable(lambda: tf.zeros([2, 1]), name="w")
    pred = features["x"] @ w
    loss = tf.reduce_mean(tf.square(pred - tf.cast(labels, tf.float32)))
    train_op = None
    if mode == trainer.ModeKeys.TRAIN:
        train_op = trainer.optimizers.SGD(0.1).minimize(loss, trainer.get_global_step())
    return trainer.EstimatorSpec(mode, loss=loss, predictions={"y": pred}, train_op=train_op)


def input_fn(batch=4):
    x = np.ones((8, 2), np.float32)
    y = np.ones((8, 1), np.float32)
    return lambda: tf.data.Dataset.from_tensor_slices(({"x": x}, y)).batch(batch, drop_remainder=True).repeat()


def test_a_strategy_that_is_not_a_strategy(tmp_path):
    est = trainer.Estimator(model_fn, config=trainer.RunConfig(model_dir=str(tmp_path), train_distribute="mirrored"))
    with pytest.raises(TypeError, match=r"RunConfig\(train_distribute='mirrored'\) is not a tf.distribute.Strategy"):
        est.train(input_fn(), steps=1)


def test_strategies_not_implemented_yet_say_so():
    config = trainer.RunConfig(train_distribute=tf.distribute.OneDeviceStrategy("/cpu:0"))
    with pytest.raises(NotImplementedError, match=r"train_distribute=OneDeviceStrategy\(...\)\) is not implemented"):
        _distribute.strategy_for(config, ModeKeys.TRAIN)


def test_training_on_a_tf_config_cluster_is_refused_not_run_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("TF_CONFIG", json.dumps({
        "cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}, "task": {"type": "worker", "index": 1}}))
    est = trainer.Estimator(model_fn, config=trainer.RunConfig(model_dir=str(tmp_path)))
    with pytest.raises(NotImplementedError, match=r"TF_CONFIG cluster \(2 workers, 0 ps\) without train_distribute=tf.distribute.MultiWorkerMirroredStrategy\(\) is not implemented"):
        est.train(input_fn(), steps=1)


def test_a_batch_that_does_not_divide_across_replicas():
    class TwoReplicas:  # what check_global_batch reads of a strategy
        pass

    spec = ({"x": tf.TensorSpec([5, 2], tf.float32)}, tf.TensorSpec([5, 1], tf.float32))
    with pytest.raises(ValueError, match=r"batch of 5 does not divide across the 2 replicas .* multiple of 2"):
        _distribute.check_global_batch(spec, 2, caller="Estimator.train", strategy=TwoReplicas())


def test_one_replica_mirrored_trains_like_no_strategy(tmp_path):
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    weights = []
    for name, strat in (("none", None), ("mirrored", strategy)):
        est = trainer.Estimator(model_fn, config=trainer.RunConfig(
            model_dir=str(tmp_path / name), train_distribute=strat, eval_distribute=strat))
        est.train(input_fn(), steps=5)
        weights.append(est.get_variable_value("w"))
        assert est.get_variable_value("global_step") == 5
        assert est.evaluate(lambda: input_fn()().take(2))["global_step"] == 5
    np.testing.assert_allclose(weights[1], weights[0], rtol=1e-6)
