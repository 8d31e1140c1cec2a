"""RNN estimators over sequence feature columns (tf.estimator.experimental.RNN*).

The network: `SequenceFeatures` gives ``[batch, T, d]`` and the lengths;
context columns (`DenseFeatures`) are repeated at every step and appended;
stacked recurrent cells run over the real steps only (padding is masked);
a dense layer gives the logits of the last step, or of every step with
``return_sequences=True``.

Variables: ``rnn/sequence_input_layer/sequence_features/<column>/...``,
``rnn/sequence_input_layer/dense_features/<column>/...`` (context),
``rnn/<cell_type>_cell_<i>/{kernel,recurrent_kernel,bias}`` and
``rnn/logits/{kernel,bias}``. tf.estimator's Keras model named its variables
after Keras' automatic layer names (``rnn_model/rnn/...``); they are not
reproduced, so its RNN checkpoints do not warm-start these.
"""

from __future__ import annotations

from collections.abc import Mapping

import tensorflow as tf

from trainer import feature_column as fc
from trainer.canned import _common
from trainer.canned.rnn_cells import CELL_TYPES, make_cells, run_builtin_cells, run_user_cells
from trainer.estimator_spec import EstimatorSpec
from trainer.export import PredictOutput
from trainer.feature_column.base import is_sequence_column
from trainer.layers import dense
from trainer.mode_keys import ModeKeys

__all__ = ["RNNClassifier", "RNNEstimator", "rnn_logits"]

# tf.estimator's RNN estimators: an optimizer given by name gets learning rate 0.05 and
# each gradient is clipped to norm 5.0 (Keras' ``clipnorm``); an optimizer object is used
# as it is.
DEFAULT_LEARNING_RATE = 0.05
DEFAULT_CLIP_NORM = 5.0
DEFAULT_CELL_TYPE = "simple_rnn"
#: The prediction key (and feature key) of the ``[batch, T]`` mask with ``return_sequences``.
SEQUENCE_MASK = "sequence_mask"


class _UseDefault:
    def __repr__(self) -> str:
        return "USE_DEFAULT"


#: ``cell_type`` when the caller gave none ('simple_rnn', or the user's ``rnn_cell_fn``).
USE_DEFAULT = _UseDefault()


def rnn_logits(features, sequence_feature_columns, context_feature_columns, logits_dimension, *,
               units, cell_type, rnn_cell_fn, return_sequences):
    """Returns ``(logits, mask)``: ``[batch, C]`` (or ``[batch, T, C]``) and the ``[batch, T]`` mask."""
    with tf.name_scope("sequence_input_layer"):
        sequence_input, length = fc.SequenceFeatures(sequence_feature_columns)(features)
        if context_feature_columns:
            context = fc.DenseFeatures(context_feature_columns)(features)
            sequence_input = fc.concatenate_context_input(context, sequence_input)
    mask = tf.sequence_mask(length, tf.shape(sequence_input)[1])
    if rnn_cell_fn is not None:
        outputs = run_user_cells(rnn_cell_fn(), sequence_input, mask,
                                 return_sequences=return_sequences)
    else:
        outputs = run_builtin_cells(make_cells(units, cell_type), sequence_input, mask,
                                    return_sequences=return_sequences)
    if not return_sequences:
        return dense(outputs, logits_dimension, name="logits"), mask
    batch, steps = tf.shape(outputs)[0], tf.shape(outputs)[1]
    flat = dense(tf.reshape(outputs, [-1, int(outputs.shape[-1])]), logits_dimension,
                 name="logits")
    return tf.reshape(flat, tf.stack([batch, steps, logits_dimension])), mask


def _train_op_fn(optimizer):
    """tf.estimator's default for a named optimizer: rate 0.05, each gradient clipped to 5.0."""
    def train_op_fn(loss):
        from trainer._context import get_global_step

        pairs = optimizer.compute_gradients(loss)
        clipped = [(tf.clip_by_norm(g, DEFAULT_CLIP_NORM), v) for g, v in pairs]
        return optimizer.apply_gradients(clipped, global_step=get_global_step())

    return train_op_fn


def _per_step(value, steps, what: str) -> tf.Tensor:
    """``value`` (dense, sparse or ragged, ``[batch, T']`` or ``[batch, T', 1]``) as ``[batch, steps]``.

    Steps past ``T'`` are padded (zero, False or ""); they are masked out anyway.
    """
    if isinstance(value, tf.RaggedTensor):
        value = value.to_tensor()
    if isinstance(value, tf.SparseTensor):
        value = tf.sparse.to_dense(value)
    value = tf.convert_to_tensor(value)
    if value.shape.rank == 3 and value.shape[-1] == 1:
        value = value[:, :, 0]
    if value.shape.rank != 2:
        raise ValueError(
            f"RNNEstimator with return_sequences=True got {what} of shape {value.shape}; "
            "expected [batch, T]: one value per step.")
    value = value[:, :steps]
    return tf.pad(value, [[0, 0], [0, steps - tf.shape(value)[1]]],
                  constant_values=tf.zeros([], value.dtype))


def _sequence_spec(head, features, mode, logits, mask, labels, optimizer_kwargs, mask_key):
    """Per-step logits ``[batch, T, C]``: the head sees the real steps as one flat batch.

    A ``[batch, T]`` mask given in the features under ``mask_key`` also restricts
    the steps used (as in tf.estimator), e.g. to leave unlabeled steps out of the
    loss and metrics. Per-step weights (the head's ``weight_column``) are ``[batch, T]``.
    """
    batch, steps = tf.shape(logits)[0], tf.shape(logits)[1]
    if mask_key in features:
        given = _per_step(features[mask_key], steps, f"features[{mask_key!r}] (the mask)")
        mask = tf.logical_and(mask, tf.cast(given, tf.bool))
    if mode == ModeKeys.PREDICT:
        flat = tf.reshape(logits, [-1, head.logits_dimension])
        spec = head.create_estimator_spec(features, mode, flat)
        predictions = {}
        for key, value in spec.predictions.items():
            inner = tf.shape(value)[1:]
            predictions[key] = tf.reshape(value, tf.concat([[batch, steps], inner], axis=0))
        predictions[mask_key] = mask
        # Classification/regression outputs are [batch, classes]; per-step results only fit
        # the generic predict signature.
        outputs = {"serving_default": PredictOutput(predictions),
                   "predict": PredictOutput(predictions)}
        return EstimatorSpec(mode, predictions=predictions, export_outputs=outputs)
    if labels is None:
        raise ValueError(
            f"RNNEstimator in mode={mode!r} got labels=None; expected per-step labels "
            "[batch, T] with return_sequences=True.")
    if isinstance(labels, Mapping):
        if len(labels) != 1:
            raise ValueError(f"RNNEstimator got labels with keys {sorted(labels)}; expected one.")
        labels = next(iter(labels.values()))
    labels = _per_step(labels, steps, "labels")
    flat_features = dict(features)
    weight_column = getattr(head, "weight_column", None)
    weight_key = getattr(weight_column, "key", weight_column)
    if isinstance(weight_key, str) and weight_key in features:
        weights = _per_step(features[weight_key], steps, f"the weights {weight_key!r}")
        flat_features[weight_key] = tf.boolean_mask(weights, mask)[:, None]
    return head.create_estimator_spec(
        flat_features, mode, tf.boolean_mask(logits, mask), tf.boolean_mask(labels, mask)[:, None],
        **optimizer_kwargs)


def _check_units(units, caller):
    if isinstance(units, int) and not isinstance(units, bool):
        units = [units]
    if (not isinstance(units, (list, tuple)) or not units
            or any(isinstance(u, bool) or not isinstance(u, int) or u < 1 for u in units)):
        raise ValueError(
            f"{caller} got units={units!r}; expected a non-empty list of positive ints, one per "
            "stacked cell, e.g. units=[32, 16].")
    return list(units)


def _check_sequence_columns(columns, caller):
    columns = _common.check_columns(columns, caller, "sequence_feature_columns")
    for column in columns:
        if not is_sequence_column(column) or not isinstance(column, fc.DenseColumn):
            raise ValueError(
                f"{caller} got sequence_feature_columns item {column.name!r}, which is not a "
                "sequence dense column; expected sequence_numeric_column or an embedding/"
                "indicator column of a sequence_categorical_column_with_*. How to fix: move it "
                "to context_feature_columns, or use the sequence_* variant of the column.")
    return columns


def _check_context_columns(columns, caller):
    if columns is None:
        return None
    columns = _common.check_columns(columns, caller, "context_feature_columns")
    for column in columns:
        if is_sequence_column(column):
            raise ValueError(
                f"{caller} got context_feature_columns item {column.name!r}, which is a sequence "
                "column; expected non-sequence dense columns (one value per example, repeated at "
                "every step). How to fix: move it to sequence_feature_columns.")
    return columns


class RNNEstimator(_common.CannedEstimator):
    """An RNN over sequence columns with any head (tf.estimator.experimental.RNNEstimator).

    Args:
        head: A `trainer.heads` head; it owns loss, metrics and predictions.
        sequence_feature_columns: Sequence columns (`sequence_numeric_column`, or
            embedding/indicator columns of ``sequence_categorical_column_with_*``).
        context_feature_columns: Optional non-sequence dense columns, repeated at every step.
        units: Sizes of the stacked cells, e.g. ``[32, 16]``.
        cell_type: 'simple_rnn' (default), 'lstm' or 'gru' (built-in cells), or a
            Keras cell class such as ``keras.layers.LSTMCell`` (one per ``units`` entry).
        rnn_cell_fn: Instead of ``units``/``cell_type``: a function of no arguments
            returning a Keras RNN cell or a list of cells (Keras 3 or tf_keras).
        return_sequences: If True, logits, labels and predictions are per step
            (``[batch, T]``), and predictions add ``'sequence_mask'``. A mask
            given in the features under that key also restricts the loss and
            metrics to its True steps.
        model_dir: Checkpoint directory.
        optimizer: Name (learning rate 0.05, gradients clipped to norm 5.0, as in
            tf.estimator), a ``{"name": ...}`` mapping, or an optimizer object.
        config: A `RunConfig`.
        sequence_mask: Key of the ``[batch, T]`` mask in the predictions when
            ``return_sequences=True``.
        warm_start_from: Not in tf.estimator's RNN estimators (added here, as
            the other canned estimators have it): a checkpoint directory or
            `WarmStartSettings`.

    Example:
        >>> from trainer import heads
        >>> from trainer.feature_column import sequence_numeric_column
        >>> est = RNNEstimator(heads.RegressionHead(), [sequence_numeric_column("x")],
        ...                    units=[8], cell_type="gru")
        >>> est.get_params()["cell_type"]
        'gru'
    """

    def __init__(self, head, sequence_feature_columns, context_feature_columns=None, units=None,
                 cell_type=USE_DEFAULT, rnn_cell_fn=None, return_sequences=False, model_dir=None,
                 optimizer="Adagrad", config=None, *, sequence_mask=SEQUENCE_MASK,
                 warm_start_from=None):
        caller = type(self).__name__
        sequence_feature_columns = _check_sequence_columns(sequence_feature_columns, caller)
        context_feature_columns = _check_context_columns(context_feature_columns, caller)
        if rnn_cell_fn is not None:
            if units is not None or cell_type is not USE_DEFAULT:
                raise ValueError(
                    f"{caller} got rnn_cell_fn with units={units!r}, cell_type={cell_type!r}; "
                    "expected either rnn_cell_fn or units/cell_type. How to fix: drop units and "
                    "cell_type, or drop rnn_cell_fn.")
            if not callable(rnn_cell_fn):
                raise TypeError(f"{caller} got rnn_cell_fn={rnn_cell_fn!r}; expected a function.")
            resolved_cell = None
            cell_fn = rnn_cell_fn
        elif isinstance(cell_type, type):
            # tf.estimator also took a cell class, e.g. keras.layers.LSTMCell: one per unit size.
            units = _check_units(units, caller)
            resolved_cell = None
            cell_class = cell_type

            def cell_fn():
                return [cell_class(units=n) for n in units]
        else:
            units = _check_units(units, caller)
            resolved_cell = DEFAULT_CELL_TYPE if cell_type is USE_DEFAULT else cell_type
            if resolved_cell not in CELL_TYPES:
                raise ValueError(
                    f"{caller} got cell_type={cell_type!r}; expected one of {sorted(CELL_TYPES)}. "
                    "How to fix: pick one, or pass rnn_cell_fn returning your own Keras cell.")
            cell_fn = None
        if not isinstance(return_sequences, bool):
            raise TypeError(f"{caller} got return_sequences={return_sequences!r}; expected a bool.")
        if not isinstance(sequence_mask, str) or not sequence_mask:
            raise ValueError(f"{caller} got sequence_mask={sequence_mask!r}; expected a key name.")
        init_args = dict(head=head, sequence_feature_columns=sequence_feature_columns,
                         context_feature_columns=context_feature_columns, units=units,
                         cell_type=cell_type, rnn_cell_fn=rnn_cell_fn,
                         return_sequences=return_sequences, optimizer=optimizer)

        def model_fn(features, labels, mode, config):
            del config
            with tf.name_scope("rnn"):
                logits, mask = rnn_logits(
                    features, sequence_feature_columns, context_feature_columns,
                    head.logits_dimension, units=units, cell_type=resolved_cell,
                    rnn_cell_fn=cell_fn, return_sequences=return_sequences)
            optimizer_kwargs = {}
            if mode == ModeKeys.TRAIN:
                if isinstance(optimizer, (str, Mapping)):
                    opt = _common.resolve_optimizer(optimizer, DEFAULT_LEARNING_RATE)
                    optimizer_kwargs = {"train_op_fn": _train_op_fn(opt)}
                else:
                    optimizer_kwargs = {"optimizer": _common.resolve_optimizer(optimizer, None)}
            if return_sequences:
                return _sequence_spec(head, features, mode, logits, mask, labels,
                                      optimizer_kwargs, sequence_mask)
            return head.create_estimator_spec(features, mode, logits, labels, **optimizer_kwargs)

        self.head = head
        super().__init__(model_fn, init_args=init_args, model_dir=model_dir, config=config,
                         warm_start_from=warm_start_from)


class RNNClassifier(RNNEstimator):
    """An RNN classifier (tf.estimator.experimental.RNNClassifier).

    Binary (``n_classes=2``) or multi-class; with ``return_sequences=True``
    one class per step. Other arguments are `RNNEstimator`'s.

    Example:
        >>> from trainer.feature_column import (embedding_column,
        ...     sequence_categorical_column_with_identity)
        >>> tokens = embedding_column(sequence_categorical_column_with_identity("t", 100), 8)
        >>> clf = RNNClassifier([tokens], units=[16], cell_type="lstm", n_classes=3)
        >>> clf.head.logits_dimension
        3
    """

    def __init__(self, sequence_feature_columns, context_feature_columns=None, units=None,
                 cell_type=USE_DEFAULT, rnn_cell_fn=None, return_sequences=False, model_dir=None,
                 n_classes=2, weight_column=None, label_vocabulary=None, optimizer="Adagrad",
                 loss_reduction=_common.DEFAULT_REDUCTION, sequence_mask=SEQUENCE_MASK,
                 config=None, *, warm_start_from=None):
        head = _common.classification_head(n_classes, weight_column, label_vocabulary,
                                           loss_reduction, type(self).__name__)
        super().__init__(head, sequence_feature_columns, context_feature_columns, units=units,
                         cell_type=cell_type, rnn_cell_fn=rnn_cell_fn,
                         return_sequences=return_sequences, model_dir=model_dir,
                         optimizer=optimizer, config=config, sequence_mask=sequence_mask,
                         warm_start_from=warm_start_from)
        self._init_args.update(n_classes=n_classes, weight_column=weight_column,
                               label_vocabulary=label_vocabulary, loss_reduction=loss_reduction,
                               sequence_mask=sequence_mask)
        self._init_args.pop("head")
