"""tf.estimator programs in the shape of TensorFlow's own tutorials and guides, written for this
project's tests with their data made offline. Each reads as its tf.estimator original with only
the imports changed (``tf.estimator`` → ``trainer``, ``tf.feature_column`` → ``fc``,
``tf.compat.v1.estimator.inputs`` → ``trainer``); `test_corpus.py` runs every one.

Each ``run(model_dir)`` returns what the test checks.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import tensorflow as tf

import trainer
from trainer import feature_column as fc

def iris_frames():
    """An iris-like frame (4 measurements, 3 species), made here."""
    rng = np.random.default_rng(0)
    centers = np.array([[5.0, 3.4, 1.5, 0.2], [5.9, 2.8, 4.3, 1.3], [6.6, 3.0, 5.6, 2.0]])
    species = rng.integers(0, 3, size=300)
    x = centers[species] + 0.3 * rng.standard_normal((300, 4))
    frame = pd.DataFrame(x.astype(np.float32), columns=["SepalLength", "SepalWidth", "PetalLength", "PetalWidth"])
    return frame[:240], species[:240], frame[240:], species[240:]


def premade_estimators(model_dir):
    """The "Premade Estimators" tutorial: a DNNClassifier on iris from a pandas input_fn."""
    train, train_y, test, test_y = iris_frames()

    def input_fn(features, labels, training=True, batch_size=256):
        dataset = tf.data.Dataset.from_tensor_slices((dict(features), labels))
        if training:
            dataset = dataset.shuffle(1000).repeat()
        return dataset.batch(batch_size)

    my_feature_columns = [fc.numeric_column(key=key) for key in train.keys()]
    classifier = trainer.DNNClassifier(feature_columns=my_feature_columns, hidden_units=[30, 10], n_classes=3,
                                       model_dir=model_dir)
    classifier.train(input_fn=lambda: input_fn(train, train_y, training=True), steps=1)
    first = classifier.evaluate(input_fn=lambda: input_fn(test, test_y, training=False))
    classifier.train(input_fn=lambda: input_fn(train, train_y, training=True), steps=499)
    eval_result = classifier.evaluate(input_fn=lambda: input_fn(test, test_y, training=False))
    expected = test[:3]
    predictions = classifier.predict(input_fn=lambda: tf.data.Dataset.from_tensor_slices(dict(expected)).batch(256))
    return {"first": first, "eval": eval_result, "predictions": [p["class_ids"][0] for p in predictions]}


def titanic_frames():
    rng = np.random.default_rng(1)
    n = 400
    sex = rng.choice(["male", "female"], n)
    klass = rng.choice(["First", "Second", "Third"], n)
    age = np.round(rng.uniform(1, 70, n)).astype(np.float32)
    fare = rng.uniform(5, 100, n).astype(np.float32)
    survived = ((sex == "female").astype(int) + (klass == "First") + (age < 12) + rng.uniform(0, 1, n) > 1.2)
    frame = pd.DataFrame({"sex": sex, "class": klass, "age": age, "fare": fare})
    return frame[:320], survived[:320].astype(np.int64), frame[320:], survived[320:].astype(np.int64)


def linear_model(model_dir):
    """The "Build a linear model with Estimators" tutorial: vocabulary columns from the data, a
    float ``age`` in a crossed column, LinearClassifier."""
    dftrain, y_train, dfeval, y_eval = titanic_frames()
    feature_columns = []
    for feature_name in ["sex", "class"]:
        vocabulary = dftrain[feature_name].unique()
        feature_columns.append(fc.categorical_column_with_vocabulary_list(feature_name, vocabulary))
    for feature_name in ["age", "fare"]:
        feature_columns.append(fc.numeric_column(feature_name, dtype=tf.float32))

    def make_input_fn(data_df, label_df, num_epochs=10, shuffle=True, batch_size=32):
        def input_function():
            ds = tf.data.Dataset.from_tensor_slices((dict(data_df), label_df))
            if shuffle:
                ds = ds.shuffle(1000)
            return ds.batch(batch_size).repeat(num_epochs)
        return input_function

    train_input_fn = make_input_fn(dftrain, y_train)
    eval_input_fn = make_input_fn(dfeval, y_eval, num_epochs=1, shuffle=False)
    age_x_gender = fc.crossed_column(["age", "sex"], hash_bucket_size=100)
    linear_est = trainer.LinearClassifier(feature_columns=feature_columns + [age_x_gender], model_dir=model_dir)
    linear_est.train(train_input_fn)
    return {"eval": linear_est.evaluate(eval_input_fn)}


def tf1_model_fn(model_dir):
    """The TF2 migration guide's TF1 Estimator, as written: its tf.compat.v1 optimizer raises
    the one-line error naming the replacement (docs/migration.md)."""
    x = np.random.default_rng(2).normal(size=(64, 1)).astype(np.float32)
    y = 2 * x + 1

    def _input_fn():
        return tf.data.Dataset.from_tensor_slices((x, y)).batch(8)

    def _model_fn(features, labels, mode):
        logits = tf.keras.layers.Dense(1)(features)
        loss = tf.reduce_mean(tf.square(labels - logits))
        optimizer = tf.compat.v1.train.AdagradOptimizer(0.05)
        train_op = optimizer.minimize(loss, global_step=tf.compat.v1.train.get_global_step())
        return trainer.EstimatorSpec(mode, loss=loss, train_op=train_op)

    estimator = trainer.Estimator(model_fn=_model_fn, model_dir=model_dir)
    estimator.train(_input_fn)


def tf1_model_fn_as_the_message_says(model_dir):
    """The same, with the two names the error gives: trainer.optimizers.Adagrad, trainer.get_global_step."""
    x = np.random.default_rng(2).normal(size=(64, 1)).astype(np.float32)
    y = 2 * x + 1

    def _input_fn():
        return tf.data.Dataset.from_tensor_slices((x, y)).batch(8).repeat(50)

    def _model_fn(features, labels, mode):
        logits = tf.keras.layers.Dense(1)(features)
        loss = tf.reduce_mean(tf.square(labels - logits))
        optimizer = trainer.optimizers.Adagrad(0.5)
        train_op = optimizer.minimize(loss, global_step=trainer.get_global_step())
        return trainer.EstimatorSpec(mode, loss=loss, train_op=train_op)

    estimator = trainer.Estimator(model_fn=_model_fn, model_dir=model_dir)
    estimator.train(_input_fn)
    return {"eval": estimator.evaluate(lambda: tf.data.Dataset.from_tensor_slices((x, y)).batch(64))}


def keras_model_to_estimator(model_dir):
    """The "Create an Estimator from a Keras model" guide: features keyed by the input layer's name."""
    model = tf.keras.models.Sequential([tf.keras.layers.Dense(16, activation="relu", input_shape=(4,)),
                                        tf.keras.layers.Dropout(0.2), tf.keras.layers.Dense(3)])
    model.compile(loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True), optimizer="adam")
    train, train_y, test, test_y = iris_frames()

    def input_fn(x, y, repeat):
        dataset = tf.data.Dataset.from_tensor_slices(({"dense_input": x.values}, y)).batch(32)
        return dataset.repeat() if repeat else dataset

    keras_estimator = trainer.keras.model_to_estimator(keras_model=model, model_dir=model_dir)
    keras_estimator.train(input_fn=lambda: input_fn(train, train_y, True), steps=300)
    return {"eval": keras_estimator.evaluate(input_fn=lambda: input_fn(test, test_y, False), steps=10)}


def custom_estimator_with_hooks_and_schedule(model_dir):
    """The Estimator guide's custom model_fn: a decaying learning rate on the global step,
    add_metrics, a LoggingTensorHook and an early-stopping hook in train_and_evaluate."""
    x = np.random.default_rng(2).normal(size=(512, 3)).astype(np.float32)
    y = (x @ np.array([1.0, -1.0, 0.5], np.float32) > 0).astype(np.int64)

    def model_fn(features, labels, mode, params):
        net = features["x"]
        for units in params["hidden_units"]:
            net = trainer.layers.dense(net, units, activation=tf.nn.relu)
        logits = tf.identity(trainer.layers.dense(net, 2), name="logits")
        classes = tf.argmax(logits, 1)
        if mode == trainer.ModeKeys.PREDICT:
            return trainer.EstimatorSpec(mode, predictions={"class_ids": classes})
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
        accuracy = trainer.metrics.accuracy(labels=labels, predictions=classes, name="acc_op")
        if mode == trainer.ModeKeys.EVAL:
            return trainer.EstimatorSpec(mode, predictions={"class_ids": classes}, loss=loss,
                                         eval_metric_ops={"accuracy": accuracy})
        learning_rate = tf.compat.v1.train.exponential_decay(0.1, trainer.get_global_step(), 100, 0.9)
        train_op = trainer.optimizers.Adagrad(learning_rate).minimize(loss, global_step=trainer.get_global_step())
        return trainer.EstimatorSpec(mode, loss=loss, train_op=train_op)

    def my_metric(labels, predictions):
        return {"positive_rate": trainer.metrics.mean(tf.cast(predictions["class_ids"], tf.float32))}

    config = trainer.RunConfig(model_dir=model_dir, save_checkpoints_steps=100)
    classifier = trainer.add_metrics(trainer.Estimator(model_fn, config=config, params={"hidden_units": [8]}),
                                     my_metric)

    def input_fn(repeat):
        dataset = tf.data.Dataset.from_tensor_slices(({"x": x}, y)).batch(64)
        return dataset.repeat() if repeat else dataset

    logging_hook = trainer.LoggingTensorHook({"logits": "logits"}, every_n_iter=100)
    early_stop = trainer.hooks.stop_if_no_decrease_hook(classifier, "loss", max_steps_without_decrease=1000)
    result, _ = trainer.train_and_evaluate(
        classifier, trainer.TrainSpec(lambda: input_fn(True), max_steps=400, hooks=[logging_hook, early_stop]),
        trainer.EvalSpec(lambda: input_fn(False), throttle_secs=0))
    return {"eval": result}


def numpy_input_fn_and_warm_start(model_dir):
    """tf.compat.v1.estimator.inputs.numpy_input_fn, then WarmStartSettings into a new model."""
    x = np.random.default_rng(2).normal(size=(256, 2)).astype(np.float32)
    y = (x @ np.array([3.0, -2.0], np.float32) + 1.0).astype(np.float32)
    columns = [fc.numeric_column("x", shape=2)]
    train_input_fn = trainer.numpy_input_fn({"x": x}, y, batch_size=32, num_epochs=None, shuffle=True)
    first = trainer.LinearRegressor(columns, model_dir=model_dir + "/first", optimizer="SGD")
    first.train(train_input_fn, steps=300)
    warm = trainer.WarmStartSettings(ckpt_to_initialize_from=model_dir + "/first", vars_to_warm_start=".*weights.*")
    second = trainer.LinearRegressor(columns, model_dir=model_dir + "/second", optimizer="SGD", warm_start_from=warm)
    eval_input_fn = trainer.numpy_input_fn({"x": x}, y, batch_size=256, num_epochs=1, shuffle=False)
    second.train(trainer.numpy_input_fn({"x": x}, y, batch_size=32, num_epochs=None, shuffle=True), steps=1)
    return {"first": first.evaluate(eval_input_fn),
            "warm_weights": second.get_variable_value("linear/linear_model/x/weights"),
            "first_weights": first.get_variable_value("linear/linear_model/x/weights")}


def mirrored_strategy(model_dir):
    """The distributed-training guide's Estimator under MirroredStrategy (one CPU device here)."""
    x = np.random.default_rng(2).normal(size=(256, 2)).astype(np.float32)
    y = (x.sum(1) > 0).astype(np.int64)
    config = trainer.RunConfig(train_distribute=tf.distribute.MirroredStrategy(["/cpu:0"]),
                               eval_distribute=tf.distribute.MirroredStrategy(["/cpu:0"]))
    classifier = trainer.DNNClassifier(hidden_units=[8], feature_columns=[fc.numeric_column("x", shape=2)],
                                       optimizer="Adam", model_dir=model_dir, config=config)

    def input_fn():
        return tf.data.Dataset.from_tensor_slices(({"x": x}, y)).repeat().batch(32)

    classifier.train(input_fn, steps=200)
    return {"eval": classifier.evaluate(lambda: tf.data.Dataset.from_tensor_slices(({"x": x}, y)).batch(64))}
