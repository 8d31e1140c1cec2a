"""The seeds' custom Estimator for Iris, written against `trainer`.

It reads line for line like the tf.estimator original: only the imports
changed (``tf.estimator`` -> ``trainer``, ``tf.layers`` -> ``trainer.layers``,
``tf.metrics`` -> ``trainer.metrics``, ``tf.train.AdagradOptimizer`` ->
``trainer.optimizers.Adagrad``), plus ``export_outputs`` so the exported
model answers TF Serving's Classify API.

Run it: ``python docs/examples/custom_estimator_iris.py [--model_dir DIR]``.
"""

from __future__ import annotations

import argparse
import tempfile

import numpy as np
import tensorflow as tf
from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split

import trainer

FEATURES = ["SepalLength", "SepalWidth", "PetalLength", "PetalWidth"]
SPECIES = ["Setosa", "Versicolor", "Virginica"]


def load_data(seed=0):
    """scikit-learn's bundled iris, split 80/20 into train and held-out test."""
    iris = load_iris()
    x_train, x_test, y_train, y_test = train_test_split(
        iris.data.astype(np.float32), iris.target.astype(np.int64), test_size=0.2,
        random_state=seed, stratify=iris.target)
    as_dict = lambda x: {name: x[:, i] for i, name in enumerate(FEATURES)}  # noqa: E731
    return (as_dict(x_train), y_train), (as_dict(x_test), y_test)


def train_input_fn(features, labels, batch_size):
    dataset = tf.data.Dataset.from_tensor_slices((dict(features), labels))
    return dataset.shuffle(1000).repeat().batch(batch_size)


def eval_input_fn(features, labels, batch_size):
    inputs = dict(features) if labels is None else (dict(features), labels)
    return tf.data.Dataset.from_tensor_slices(inputs).batch(batch_size)


def my_model_fn(features, labels, mode, params):
    """DNN with two hidden layers of 10 units."""
    # The input layer: the numeric features side by side.
    net = tf.concat([tf.reshape(tf.cast(features[key], tf.float32), [-1, 1])
                     for key in params["feature_keys"]], axis=1)
    for units in params["hidden_units"]:
        net = trainer.layers.dense(net, units=units, activation=tf.nn.relu)

    # Compute logits (1 per class).
    logits = trainer.layers.dense(net, params["n_classes"], activation=None)

    # Compute predictions.
    predicted_classes = tf.argmax(logits, 1)
    if mode == trainer.ModeKeys.PREDICT:
        predictions = {
            "class_ids": predicted_classes[:, tf.newaxis],
            "probabilities": tf.nn.softmax(logits),
            "logits": logits,
        }
        classes = tf.tile(tf.constant([SPECIES]), [tf.shape(logits)[0], 1])
        export_outputs = {
            "serving_default": trainer.export.ClassificationOutput(
                scores=predictions["probabilities"], classes=classes),
            "predict": trainer.export.PredictOutput(predictions),
        }
        return trainer.EstimatorSpec(mode, predictions=predictions, export_outputs=export_outputs)

    # Compute loss.
    loss = tf.reduce_mean(
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))

    # Compute evaluation metrics.
    accuracy = trainer.metrics.accuracy(labels=labels, predictions=predicted_classes, name="acc_op")
    metrics = {"my_accuracy": accuracy}
    tf.summary.scalar("my_accuracy", accuracy[1])

    if mode == trainer.ModeKeys.EVAL:
        return trainer.EstimatorSpec(mode, loss=loss, eval_metric_ops=metrics)

    # Create training op.
    optimizer = trainer.optimizers.Adagrad(learning_rate=0.05)
    train_op = optimizer.minimize(loss, global_step=trainer.get_global_step())
    return trainer.EstimatorSpec(mode, loss=loss, train_op=train_op)


def serialized_examples(features, rows):
    """tf.Example protos, serialized, for the given rows of a feature dict."""
    out = []
    for i in rows:
        feature = {key: tf.train.Feature(float_list=tf.train.FloatList(value=[float(features[key][i])]))
                   for key in FEATURES}
        out.append(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    return out


def run(model_dir, export_dir, *, train_steps=1000, batch_size=32):
    """Trains, evaluates, exports and classifies; returns a dict of what happened."""
    (train_x, train_y), (test_x, test_y) = load_data()
    classifier = trainer.Estimator(
        model_fn=my_model_fn,
        model_dir=model_dir,
        params={"feature_keys": FEATURES, "hidden_units": [10, 10], "n_classes": 3})
    classifier.train(input_fn=lambda: train_input_fn(train_x, train_y, batch_size),
                     steps=train_steps)
    eval_result = classifier.evaluate(input_fn=lambda: eval_input_fn(test_x, test_y, batch_size))

    feature_spec = {key: tf.io.FixedLenFeature([], tf.float32) for key in FEATURES}
    receiver_fn = trainer.export.build_parsing_serving_input_receiver_fn(feature_spec)
    export_path = classifier.export_saved_model(export_dir, receiver_fn).decode()

    loaded = tf.saved_model.load(export_path)
    classify = loaded.signatures["serving_default"]
    rows = [0, 1, 2]
    response = classify(inputs=tf.constant(serialized_examples(test_x, rows)))
    served = np.argmax(response["scores"].numpy(), axis=1)
    return {"eval": eval_result, "export_path": export_path, "served_class_ids": served.tolist(),
            "expected_class_ids": test_y[rows].tolist()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model_dir", default=None)
    parser.add_argument("--export_dir", default=None)
    parser.add_argument("--train_steps", type=int, default=1000)
    args = parser.parse_args(argv)
    model_dir = args.model_dir or tempfile.mkdtemp(prefix="iris-model-")
    export_dir = args.export_dir or f"{model_dir}/export"
    result = run(model_dir, export_dir, train_steps=args.train_steps)
    print(f"\nTest set accuracy: {result['eval']['my_accuracy']:0.3f}")
    print(f"SavedModel: {result['export_path']}")
    for got, want in zip(result["served_class_ids"], result["expected_class_ids"]):
        print(f'Classify signature: "{SPECIES[got]}" (expected "{SPECIES[want]}")')


if __name__ == "__main__":
    main()
