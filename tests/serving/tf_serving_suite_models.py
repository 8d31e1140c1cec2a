"""The SavedModels that TF Serving's suite writes with TensorFlow during its tests.

Each writer takes a version directory (``<base>/00000123``). Run as a script
(``python tf_serving_suite_models.py distrat_keras <export_dir>``) for the
MirroredStrategy model: it needs two logical CPUs, which can only be set
before TensorFlow initialises its devices, so it cannot run inside pytest's
process once other tests have used TensorFlow.

Keras here is Keras 3 (``tf.keras``). ``tf.saved_model.save`` on a Keras 3
model names the default signature's input ``inputs`` and its output
``output_0`` (Keras 2 used the Input layer's name ``x`` and the last layer's
name ``y``). TF Serving's suite sends ``x`` and reads ``y``, so the Keras
writers pass an explicit ``serving_default`` signature with those names; the
model itself is the Sequential model of the original test.
"""

from __future__ import annotations

import sys

import tensorflow as tf


def save_tf_module(export_dir: str) -> None:
    """test_tf_saved_model_save: y = v1 * v2 * x = 6x, any input shape."""
    root = tf.train.Checkpoint()
    root.v1 = tf.Variable(3.0)
    root.v2 = tf.Variable(2.0)
    root.f = tf.function(lambda x: {"y": root.v1 * root.v2 * x})
    to_save = root.f.get_concrete_function(tf.TensorSpec(None, tf.float32))
    tf.saved_model.save(root, export_dir, to_save)


def save_multiple_signatures(export_dir: str) -> None:
    """test_tf_saved_model_save_multiple_signatures: y=1 (default) and y=2 (custom)."""
    root = tf.train.Checkpoint()
    root.f = tf.function(lambda x: {"y": 1.0}, input_signature=[tf.TensorSpec(None, tf.float32)])
    root.g = tf.function(lambda x: {"y": 2.0}, input_signature=[tf.TensorSpec(None, tf.float32)])
    tf.saved_model.save(root, export_dir, signatures={
        tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY: root.f,
        "custom_signature_key": root.g,
    })


def _save_keras(model, export_dir: str) -> None:
    serve = tf.function(lambda x: {"y": model(x)},
                        input_signature=[tf.TensorSpec([None, 1], tf.float32, name="x")])
    tf.saved_model.save(model, export_dir, signatures={
        tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY: serve})


def save_sequential_keras(export_dir: str) -> None:
    """test_sequential_keras_saved_model_save: identity on x of shape [batch, 1]."""
    model = tf.keras.models.Sequential()
    model.add(tf.keras.layers.Input(dtype="float32", shape=(1,), name="x"))
    model.add(tf.keras.layers.Lambda(lambda x: x, name="y"))
    _save_keras(model, export_dir)


def save_distrat_sequential_keras(export_dir: str) -> None:
    """test_distrat_sequential_keras_saved_model_save: Dense(ones) built under MirroredStrategy.

    Call in a fresh process (see the module docstring).
    """
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
    strategy = tf.distribute.MirroredStrategy(devices=("/cpu:0", "/cpu:1"))
    with strategy.scope():
        model = tf.keras.models.Sequential()
        model.add(tf.keras.layers.Input(dtype="float32", shape=(1,), name="x"))
        model.add(tf.keras.layers.Dense(1, kernel_initializer="ones", bias_initializer="zeros"))
        model.add(tf.keras.layers.Lambda(lambda x: x, name="y"))
    _save_keras(model, export_dir)


WRITERS = {
    "tf_module": save_tf_module,
    "multiple_signatures": save_multiple_signatures,
    "sequential_keras": save_sequential_keras,
    "distrat_keras": save_distrat_sequential_keras,
}

if __name__ == "__main__":
    WRITERS[sys.argv[1]](sys.argv[2])
