"""The TF.Learn paper's two iris examples, run on `trainer.learn`.

Only the imports changed: ``from tensorflow.contrib import learn`` became ``from trainer import
learn``, and scikit-learn's ``cross_validation`` module is now ``model_selection``. The custom
model's TF.Learn helpers that TensorFlow 2 no longer has (``layers.stack``,
``models.logistic_regression_zero_init``) became their nearest Keras equivalents;
``learn.optimize_loss`` is kept. See docs/migration.md ("TF.Learn and Experiment").

Run it: ``python docs/examples/tflearn_iris.py``; it prints each model's test accuracy.
"""

from __future__ import annotations

import tensorflow as tf
from sklearn import datasets, metrics, model_selection

import trainer
from trainer import learn


def load_split():
    """The paper's split: 80/20, random_state=42."""
    iris = datasets.load_iris()
    return model_selection.train_test_split(iris.data, iris.target, test_size=0.2, random_state=42)


def dnn_classifier(x_train, y_train, x_test, steps=200):
    """The paper's first example: a 3-layer DNNClassifier; returns its test predictions."""
    feature_columns = learn.infer_real_valued_columns_from_input(x_train)
    classifier = learn.DNNClassifier(feature_columns=feature_columns, hidden_units=[10, 20, 10], n_classes=3)
    classifier.fit(x_train, y_train, steps=steps)
    return list(classifier.predict(x_test, as_iterable=True))


def my_model(features, target):
    """The paper's custom model: (features, target) in, (predictions, loss, train_op) out."""
    target = tf.one_hot(target, 3, 1, 0)
    for units in [10, 20, 10]:  # was: layers.stack(features, layers.fully_connected, [10, 20, 10])
        features = tf.keras.layers.Dense(units, activation="relu")(features)
    # was: learn.models.logistic_regression_zero_init(features, target)
    logits = tf.keras.layers.Dense(3, kernel_initializer="zeros")(features)
    prediction = tf.nn.softmax(logits)
    loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=tf.cast(target, tf.float32),
                                                                  logits=logits))
    train_op = learn.optimize_loss(loss, trainer.get_global_step(), optimizer="Adagrad", learning_rate=0.1)
    return {"class": tf.argmax(prediction, 1), "prob": prediction}, loss, train_op


def custom_model(x_train, y_train, x_test, steps=1000, model_dir=None):
    """The paper's second example: `learn.Estimator(model_fn=my_model)`; returns test predictions."""
    classifier = learn.Estimator(model_fn=my_model, model_dir=model_dir)
    classifier.fit(x_train, y_train, steps=steps)
    return [p["class"] for p in classifier.predict(x_test, as_iterable=True)]


def main():
    x_train, x_test, y_train, y_test = load_split()
    for name, run in (("DNNClassifier", dnn_classifier), ("custom my_model", custom_model)):
        predictions = run(x_train, y_train, x_test)
        print(f"{name}: accuracy {metrics.accuracy_score(y_test, predictions):.3f}")


if __name__ == "__main__":
    main()
