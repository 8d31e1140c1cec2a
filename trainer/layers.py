"""TF1-style functional layers (`tf.compat.v1.layers.dense`) for model_fns.

Each call creates its variables under a scope that is unique within the
current `model_fn` call (``dense``, ``dense_1``...), restarting for every
call, so the names are the same in the TRAIN, EVAL and PREDICT traces.
"""

from __future__ import annotations

import tensorflow as tf

from trainer.variables import unique_scope_name

__all__ = ["dense", "batch_normalization"]


def dense(inputs, units, activation=None, use_bias=True, kernel_initializer=None,
          bias_initializer=None, trainable=True, name=None):
    """A fully connected layer: ``activation(inputs @ kernel + bias)``.

    Args:
        inputs: a float tensor ``[batch, n]``.
        units: output size.
        kernel_initializer: defaults to Glorot uniform, as in TF1.
        name: the variable scope; ``dense``, ``dense_1``... when omitted.

    Example:
        >>> dense(tf.ones([2, 3]), 4).shape
        TensorShape([2, 4])
    """
    if not isinstance(units, int) or units <= 0:
        raise ValueError(f"dense got units={units!r}; expected a positive int.")
    inputs = tf.convert_to_tensor(inputs)
    if inputs.shape.rank is None or inputs.shape[-1] is None:
        raise ValueError(
            f"dense got inputs with shape {inputs.shape}; the last dimension must be known."
        )
    kernel_initializer = kernel_initializer or glorot_uniform
    bias_initializer = bias_initializer or tf.zeros
    dtype = inputs.dtype if inputs.dtype.is_floating else tf.float32
    in_dim = int(inputs.shape[-1])
    with tf.name_scope(unique_scope_name(name or "dense") + "/"):  # absolute: no re-uniquifying
        kernel = tf.Variable(lambda: kernel_initializer([in_dim, units], dtype=dtype),
                             trainable=trainable, name="kernel")
        outputs = tf.matmul(tf.cast(inputs, dtype), kernel)
        if use_bias:
            bias = tf.Variable(lambda: bias_initializer([units], dtype=dtype),
                               trainable=trainable, name="bias")
            outputs = tf.nn.bias_add(outputs, bias)
    return activation(outputs) if activation is not None else outputs


def glorot_uniform(shape, dtype=tf.float32):
    """TF1's default kernel initializer, drawn with `tf.random.uniform`.

    Unlike Keras 3's initializers (which draw from Keras' own seed state), it
    follows `tf.random.set_seed`, so ``RunConfig(tf_random_seed=...)`` makes the
    initial weights reproducible, as it did in tf.estimator.
    """
    fan_in, fan_out = (shape[-2], shape[-1]) if len(shape) >= 2 else (shape[0], shape[0])
    limit = (6.0 / max(1.0, float(fan_in + fan_out))) ** 0.5
    return tf.random.uniform(shape, -limit, limit, dtype=dtype)


def batch_normalization(inputs, training, momentum=0.999, epsilon=1e-3, name=None):
    """Batch normalization with moving statistics (tf.compat.v1.layers' defaults).

    In training the batch's moments normalize and update the moving mean and
    variance; otherwise the moving statistics are used.
    """
    inputs = tf.convert_to_tensor(inputs)
    dim = int(inputs.shape[-1])
    with tf.name_scope(unique_scope_name(name or "batch_normalization") + "/"):
        gamma = tf.Variable(lambda: tf.ones([dim]), name="gamma")
        beta = tf.Variable(lambda: tf.zeros([dim]), name="beta")
        moving_mean = tf.Variable(lambda: tf.zeros([dim]), trainable=False, name="moving_mean")
        moving_variance = tf.Variable(lambda: tf.ones([dim]), trainable=False, name="moving_variance")
        if training:
            mean, variance = tf.nn.moments(inputs, axes=[0])
            updates = [moving_mean.assign(moving_mean * momentum + mean * (1 - momentum)),
                       moving_variance.assign(moving_variance * momentum + variance * (1 - momentum))]
            with tf.control_dependencies(updates):
                return tf.nn.batch_normalization(inputs, mean, variance, beta, gamma, epsilon)
        return tf.nn.batch_normalization(inputs, moving_mean, moving_variance, beta, gamma, epsilon)
