import pytest
import tensorflow as tf

import trainer
from trainer import ModeKeys

LOSS = tf.constant(1.0)


def test_mode_keys():
    assert (ModeKeys.TRAIN, ModeKeys.EVAL, ModeKeys.PREDICT) == ("train", "eval", "infer")


@pytest.mark.parametrize("kwargs, message", [
    (dict(mode="fit"), r"got mode='fit'; expected one of"),
    (dict(mode=ModeKeys.TRAIN, train_op=LOSS), r"mode='train' got loss=None: TRAIN mode needs a scalar loss"),
    (dict(mode=ModeKeys.TRAIN, loss=LOSS), r"mode='train' got train_op=None"),
    (dict(mode=ModeKeys.EVAL), r"mode='eval' got loss=None"),
    (dict(mode=ModeKeys.EVAL, loss=tf.constant([1.0, 2.0])), r"mode='eval' got loss with shape \(2,\): expected a scalar"),
    (dict(mode=ModeKeys.EVAL, loss=tf.constant(1)), r"mode='eval' got loss with dtype int32"),
    (dict(mode=ModeKeys.PREDICT), r"mode='infer' got predictions=None"),
    (dict(mode=ModeKeys.PREDICT, predictions={"a": 1}), r"mode='infer' got predictions\['a'\]=1: expected a Tensor"),
    (dict(mode=ModeKeys.EVAL, loss=LOSS, eval_metric_ops={"m": 3}), r"mode='eval' got eval_metric_ops\['m'\]=3"),
    (dict(mode=ModeKeys.PREDICT, predictions=LOSS, export_outputs={"a": 1}), r"export_outputs\['a'\]=1: expected a ClassificationOutput"),
    (dict(mode=ModeKeys.PREDICT, predictions=LOSS,
          export_outputs={"a": trainer.export.PredictOutput(LOSS), "b": trainer.export.PredictOutput(LOSS)}),
     r"several outputs were given and none is 'serving_default'"),
    (dict(mode=ModeKeys.TRAIN, loss=LOSS, train_op=LOSS, training_hooks=[object()]),
     r"training_hooks item .*hooks must subclass"),
])
def test_spec_errors_name_field_and_mode(kwargs, message):
    with pytest.raises(ValueError, match=message):
        trainer.EstimatorSpec(**kwargs)


def test_spec_defaults():
    spec = trainer.EstimatorSpec(ModeKeys.PREDICT, predictions={"y": LOSS})
    assert list(spec.export_outputs) == ["serving_default"]
    assert isinstance(spec.export_outputs["serving_default"], trainer.export.PredictOutput)
    single = trainer.EstimatorSpec(ModeKeys.PREDICT, predictions=LOSS,
                                   export_outputs={"regress": trainer.export.RegressionOutput(tf.constant([1.0]))})
    assert sorted(single.export_outputs) == ["regress", "serving_default"]
    one = trainer.EstimatorSpec(ModeKeys.EVAL, loss=tf.constant([2.0]))
    assert one.loss.shape == ()
