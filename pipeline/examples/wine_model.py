"""The wine pipeline's Trainer module: a custom ``model_fn`` with a softmax over 3 cultivars.

The Trainer imports this file (``Trainer(module_file=...)``) and calls ``trainer_fn(fn_args)``,
which returns the Estimator and its train and eval specs. The model reads the 13 transformed
(z-scored) measurements, has two hidden layers, and ends in 3 logits:

- TRAIN / EVAL: the loss is the mean softmax cross-entropy against ``cultivar`` (class ids
  0, 1, 2); EVAL also reports ``accuracy``.
- PREDICT: ``predictions`` hold ``probabilities`` (what the Evaluator scores with
  ``task="multiclass"``), ``class_ids``, ``classes`` and ``all_classes`` (the names of the 3
  classes per example: TF Serving's Classify answers with them); ``export_outputs`` declares
  the served signatures: Classify (``serving_default``) and Predict.

Walk-through: docs/example_wine.md. Hyperparameters come from ``Trainer(custom_config=...)``:
``hidden_units`` (default [16, 8]), ``learning_rate`` (0.1), ``batch_size`` (32).
"""

from __future__ import annotations

from typing import Any

FEATURES = ("alcohol", "malic_acid", "ash", "alcalinity_of_ash", "magnesium", "total_phenols", "flavanoids",
            "nonflavanoid_phenols", "proanthocyanins", "color_intensity", "hue", "od280_od315", "proline")
LABEL = "cultivar"
CLASSES = ("class_0", "class_1", "class_2")  # scikit-learn's target_names, in class id order


def model_fn(features, labels, mode, params):
    """A DNN classifier over the numeric features; ``params``: hidden_units, learning_rate."""
    import tensorflow as tf

    import trainer

    net = tf.concat([tf.reshape(tf.cast(features[name], tf.float32), [-1, 1]) for name in FEATURES], axis=1)
    for units in params["hidden_units"]:
        net = trainer.layers.dense(net, units=units, activation=tf.nn.relu)
    logits = trainer.layers.dense(net, len(CLASSES), activation=None)
    class_ids = tf.argmax(logits, axis=1)

    if mode == trainer.ModeKeys.PREDICT:
        batch = tf.shape(logits)[0]
        names = tf.constant(list(CLASSES))
        predictions = {
            "probabilities": tf.nn.softmax(logits),
            "class_ids": class_ids[:, None],
            "classes": tf.gather(names, class_ids)[:, None],
            "all_classes": tf.tile(names[None, :], [batch, 1]),
            "logits": logits,
        }
        export_outputs = {
            "serving_default": trainer.export.ClassificationOutput(
                scores=predictions["probabilities"], classes=predictions["all_classes"]),
            "predict": trainer.export.PredictOutput(predictions),
        }
        return trainer.EstimatorSpec(mode, predictions=predictions, export_outputs=export_outputs)

    labels = tf.reshape(tf.cast(labels, tf.int64), [-1])
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
    if mode == trainer.ModeKeys.EVAL:
        accuracy = trainer.metrics.accuracy(labels=labels, predictions=class_ids, name="accuracy")
        return trainer.EstimatorSpec(mode, loss=loss, eval_metric_ops={"accuracy": accuracy})

    optimizer = trainer.optimizers.Adagrad(learning_rate=params["learning_rate"])
    train_op = optimizer.minimize(loss, global_step=trainer.get_global_step())
    return trainer.EstimatorSpec(mode, loss=loss, train_op=train_op)


def trainer_fn(fn_args) -> dict[str, Any]:
    """What the Trainer calls: the Estimator, and how to train and evaluate it on Transform's output."""
    import trainer
    from components.trainer import transformed_input_fn

    config = dict(fn_args.custom_config)
    batch_size = int(config.get("batch_size", 32))
    estimator = trainer.Estimator(
        model_fn=model_fn, model_dir=fn_args.model_run_dir,
        config=trainer.RunConfig(tf_random_seed=config.get("random_seed"), save_checkpoints_steps=100),
        params={"hidden_units": list(config.get("hidden_units", [16, 8])),
                "learning_rate": float(config.get("learning_rate", 0.1))},
        warm_start_from=fn_args.base_model)
    train_input = transformed_input_fn(fn_args.train_files, fn_args.transform_graph_path, label_key=LABEL,
                                       batch_size=batch_size)
    eval_input = transformed_input_fn(fn_args.eval_files, fn_args.transform_graph_path, label_key=LABEL,
                                      batch_size=batch_size, num_epochs=1, shuffle=False)
    return {"estimator": estimator,
            "train_spec": trainer.TrainSpec(train_input, max_steps=fn_args.train_steps),
            "eval_spec": trainer.EvalSpec(eval_input, steps=fn_args.eval_steps, throttle_secs=0)}
