"""The recurrent layers of `RNNEstimator`: built-in cells and a masked time loop.

The built-in cells ('simple_rnn', 'lstm', 'gru') hold plain `tf.Variable`s,
so they are the same whichever Keras ``tf.keras`` is (Keras 3 or tf_keras)
and their variables get the Estimator's readable keys
(``rnn/lstm_cell_0/kernel``...). Their equations are Keras 3's defaults:

* simple_rnn: ``h = tanh(x W + h U + b)``.
* lstm: gates ``i, f, c~, o`` in that order, ``c = sig(f) c + sig(i) tanh(c~)``,
  ``h = sig(o) tanh(c)``; the forget-gate bias starts at 1 (``unit_forget_bias``).
* gru: ``reset_after=True``: ``z, r`` from ``x W + h U + b``,
  ``h~ = tanh(x W_h + b_h + r (h U_h + b'_h))``, ``h = z h + (1 - z) h~``.

A user's ``rnn_cell_fn`` returns Keras cells instead; they run in that
Keras' own ``RNN`` layer (see `run_user_cells`).
"""

from __future__ import annotations

import tensorflow as tf

from trainer.layers import glorot_uniform
from trainer.variables import unique_scope_name

__all__ = ["CELL_TYPES", "make_cells", "run_builtin_cells", "run_user_cells"]


def _orthogonal(shape, dtype=tf.float32):
    """Keras' default recurrent initializer, drawn with `tf.random` (follows tf.random.set_seed)."""
    rows, cols = shape
    matrix = tf.random.normal([max(rows, cols), min(rows, cols)], dtype=dtype)
    q, r = tf.linalg.qr(matrix)
    q *= tf.sign(tf.linalg.diag_part(r))
    return q if rows >= cols else tf.transpose(q)


def _recurrent_initializer(shape, dtype=tf.float32):
    """One orthogonal block per gate, as Keras initializes ``[units, gates * units]``."""
    units, total = shape
    return tf.concat([_orthogonal([units, units], dtype) for _ in range(total // units)], axis=1)


class _Cell:
    """A cell: ``step(x [batch, d], states) -> states``; ``states[0]`` is the output."""

    gates = 1
    num_states = 1

    def __init__(self, units: int, name: str) -> None:
        self.units = units
        self.name = name

    def build(self, input_dim: int) -> None:
        with tf.name_scope(unique_scope_name(self.name) + "/"):
            width = self.gates * self.units
            self.kernel = tf.Variable(lambda: glorot_uniform([input_dim, width]), name="kernel")
            self.recurrent_kernel = tf.Variable(
                lambda: _recurrent_initializer([self.units, width]), name="recurrent_kernel")
            self.bias = tf.Variable(self._bias_initial_value, name="bias")

    def _bias_initial_value(self):
        return tf.zeros([self.gates * self.units])

    def initial_states(self, batch) -> list[tf.Tensor]:
        return [tf.zeros(tf.stack([batch, self.units])) for _ in range(self.num_states)]


class SimpleRNNCell(_Cell):
    def step(self, x, states):
        return [tf.tanh(x @ self.kernel + states[0] @ self.recurrent_kernel + self.bias)]


class LSTMCell(_Cell):
    gates = 4
    num_states = 2  # (h, c)

    def _bias_initial_value(self):
        units = self.units
        return tf.concat([tf.zeros([units]), tf.ones([units]), tf.zeros([2 * units])], axis=0)

    def step(self, x, states):
        h, c = states
        i, f, candidate, o = tf.split(x @ self.kernel + h @ self.recurrent_kernel + self.bias,
                                      4, axis=1)
        c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(candidate)
        return [tf.sigmoid(o) * tf.tanh(c), c]


class GRUCell(_Cell):
    gates = 3

    def build(self, input_dim: int) -> None:
        with tf.name_scope(unique_scope_name(self.name) + "/"):
            width = 3 * self.units
            self.kernel = tf.Variable(lambda: glorot_uniform([input_dim, width]), name="kernel")
            self.recurrent_kernel = tf.Variable(
                lambda: _recurrent_initializer([self.units, width]), name="recurrent_kernel")
            # reset_after: separate input and recurrent biases (Keras keeps them as [2, 3 * units]).
            self.bias = tf.Variable(lambda: tf.zeros([2, width]), name="bias")

    def step(self, x, states):
        h = states[0]
        x_z, x_r, x_h = tf.split(x @ self.kernel + self.bias[0], 3, axis=1)
        h_z, h_r, h_h = tf.split(h @ self.recurrent_kernel + self.bias[1], 3, axis=1)
        z = tf.sigmoid(x_z + h_z)
        r = tf.sigmoid(x_r + h_r)
        candidate = tf.tanh(x_h + r * h_h)
        return [z * h + (1.0 - z) * candidate]


CELL_TYPES = {"simple_rnn": SimpleRNNCell, "lstm": LSTMCell, "gru": GRUCell}


def make_cells(units, cell_type: str) -> list[_Cell]:
    """One built-in cell per entry of ``units`` (stacked in that order)."""
    cls = CELL_TYPES[cell_type]
    return [cls(n, f"{cell_type}_cell_{i}") for i, n in enumerate(units)]


def run_builtin_cells(cells, inputs: tf.Tensor, mask: tf.Tensor, *, return_sequences: bool):
    """Runs stacked cells over ``inputs [batch, T, d]`` where ``mask [batch, T]`` is True.

    At a masked (padding) step the states and the output stay those of the last
    real step, so the final output is the output at each example's last step
    and padding values cannot change it.

    Returns ``[batch, T, units]`` if ``return_sequences`` else ``[batch, units]``.
    """
    batch = tf.shape(inputs)[0]
    sequence = tf.transpose(inputs, [1, 0, 2])  # time-major for tf.scan
    time_mask = tf.transpose(mask)[:, :, None]
    for cell in cells:
        cell.build(int(sequence.shape[-1]))

        def step(states, step_input, cell=cell):
            x, keep = step_input
            new = cell.step(x, states)
            return [tf.where(keep, n, s) for n, s in zip(new, states)]

        history = tf.scan(step, (sequence, time_mask), initializer=cell.initial_states(batch))
        sequence = history[0]  # [T, batch, units]: the output at every step
    if return_sequences:
        return tf.transpose(sequence, [1, 0, 2])
    # An empty input (T = 0) has no last step: zeros, as for an example of length 0.
    return tf.cond(tf.shape(sequence)[0] > 0, lambda: sequence[-1],
                   lambda: tf.zeros(tf.stack([batch, cells[-1].units])))


def run_user_cells(cells, inputs: tf.Tensor, mask: tf.Tensor, *, return_sequences: bool):
    """Runs the Keras cell(s) of a user's ``rnn_cell_fn`` in their own Keras' ``RNN`` layer.

    A Keras 3 cell runs in ``keras.layers.RNN``, a tf_keras cell in
    ``tf_keras.layers.RNN``; both receive the mask, so padding steps are skipped.
    """
    first = cells[0] if isinstance(cells, (list, tuple)) else cells
    package = type(first).__module__.split(".")[0]
    if package == "keras":
        import keras

        rnn_layer = keras.layers.RNN
    elif package == "tf_keras":
        import tf_keras

        rnn_layer = tf_keras.layers.RNN
    else:
        raise TypeError(
            f"RNNEstimator got a cell of type {type(first).__name__} from rnn_cell_fn; expected "
            "a Keras RNN cell (e.g. keras.layers.LSTMCell(16)) or a list of them. How to fix: "
            "return Keras cells, or use units=[...] and cell_type=... for the built-in cells.")
    layer = rnn_layer(list(cells) if isinstance(cells, (list, tuple)) else cells,
                      return_sequences=return_sequences, name="rnn")
    return tf.cast(layer(inputs, mask=mask), tf.float32)
