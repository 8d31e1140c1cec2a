"""Runs the seeds' Iris custom Estimator (docs/examples/custom_estimator_iris.py)."""

from tests.docs.examples import EXAMPLES, load_example

EXAMPLE = EXAMPLES / "custom_estimator_iris.py"


def test_iris_trains_evaluates_exports_and_classifies(tmp_path):
    example = load_example(EXAMPLE.name)
    result = example.run(str(tmp_path / "model"), str(tmp_path / "export"), train_steps=1000)
    assert result["eval"]["my_accuracy"] >= 0.9
    assert result["eval"]["global_step"] == 1000
    assert result["served_class_ids"] == result["expected_class_ids"]


def test_iris_model_fn_reads_like_the_original():
    source = EXAMPLE.read_text()
    for line in [
        "def my_model_fn(features, labels, mode, params):",
        "logits = trainer.layers.dense(net, params[\"n_classes\"], activation=None)",
        "predicted_classes = tf.argmax(logits, 1)",
        "if mode == trainer.ModeKeys.PREDICT:",
        "accuracy = trainer.metrics.accuracy(labels=labels, predictions=predicted_classes, name=\"acc_op\")",
        "metrics = {\"my_accuracy\": accuracy}",
        "tf.summary.scalar(\"my_accuracy\", accuracy[1])",
        "optimizer = trainer.optimizers.Adagrad(learning_rate=0.05)",
        "train_op = optimizer.minimize(loss, global_step=trainer.get_global_step())",
    ]:
        assert line in source
