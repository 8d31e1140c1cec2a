"""Linear estimators: weighted sums of feature columns, trained with FTRL by default."""

from __future__ import annotations

import tensorflow as tf

from trainer import feature_column as fc
from trainer.canned import _common
from trainer.mode_keys import ModeKeys

__all__ = ["linear_logits", "LinearEstimator", "LinearClassifier", "LinearRegressor"]

_COMBINERS = ("sum", "mean", "sqrtn")


def check_combiner(sparse_combiner, caller):
    if sparse_combiner not in _COMBINERS:
        raise ValueError(
            f"{caller} got sparse_combiner={sparse_combiner!r}; expected one of {_COMBINERS}."
        )
    return sparse_combiner


def linear_logits(features, feature_columns, logits_dimension, sparse_combiner):
    """``linear_model/<column>/weights`` and ``linear_model/bias_weights`` under the current scope."""
    return fc.LinearModel(feature_columns, units=logits_dimension,
                          sparse_combiner=sparse_combiner, name="linear_model")(features)


class LinearEstimator(_common.CannedEstimator):
    """A linear model with any head."""

    def __init__(self, head, feature_columns, model_dir=None, optimizer="Ftrl", config=None,
                 sparse_combiner="sum", warm_start_from=None):
        caller = type(self).__name__
        feature_columns = _common.check_columns(feature_columns, caller)
        sparse_combiner = check_combiner(sparse_combiner, caller)
        init_args = dict(head=head, feature_columns=feature_columns, optimizer=optimizer,
                         sparse_combiner=sparse_combiner)
        # tf.estimator 2.x: optimizer=None is Ftrl at min(0.2, 1/sqrt(#columns)); a name, 0.2.
        if optimizer is None:
            optimizer, learning_rate = "Ftrl", _common.linear_learning_rate(len(feature_columns))
        else:
            learning_rate = _common.LINEAR_LEARNING_RATE

        def model_fn(features, labels, mode):
            with tf.name_scope("linear"):
                logits = linear_logits(features, feature_columns, head.logits_dimension,
                                       sparse_combiner)
            opt = _common.resolve_optimizer(optimizer, learning_rate) if mode == ModeKeys.TRAIN else None
            return head.create_estimator_spec(features, mode, logits, labels, optimizer=opt)

        self.head = head
        super().__init__(model_fn, init_args=init_args, model_dir=model_dir, config=config,
                         warm_start_from=warm_start_from)


class LinearClassifier(LinearEstimator):
    """Logistic (or softmax) regression over feature columns.

    Example:
        >>> from trainer.feature_column import numeric_column
        >>> LinearClassifier([numeric_column("x")]).head.logits_dimension
        1
    """

    def __init__(self, feature_columns, model_dir=None, n_classes=2, weight_column=None,
                 label_vocabulary=None, optimizer="Ftrl", config=None, warm_start_from=None,
                 loss_reduction=_common.DEFAULT_REDUCTION, sparse_combiner="sum"):
        head = _common.classification_head(n_classes, weight_column, label_vocabulary,
                                           loss_reduction, type(self).__name__)
        super().__init__(head, feature_columns, model_dir=model_dir, optimizer=optimizer,
                         config=config, sparse_combiner=sparse_combiner,
                         warm_start_from=warm_start_from)
        self._init_args.update(n_classes=n_classes, weight_column=weight_column,
                               label_vocabulary=label_vocabulary, loss_reduction=loss_reduction)
        self._init_args.pop("head")


class LinearRegressor(LinearEstimator):
    """Least-squares linear regression over feature columns."""

    def __init__(self, feature_columns, model_dir=None, label_dimension=1, weight_column=None,
                 optimizer="Ftrl", config=None, warm_start_from=None,
                 loss_reduction=_common.DEFAULT_REDUCTION, sparse_combiner="sum"):
        head = _common.regression_head(label_dimension, weight_column, loss_reduction)
        super().__init__(head, feature_columns, model_dir=model_dir, optimizer=optimizer,
                         config=config, sparse_combiner=sparse_combiner,
                         warm_start_from=warm_start_from)
        self._init_args.update(label_dimension=label_dimension, weight_column=weight_column,
                               loss_reduction=loss_reduction)
        self._init_args.pop("head")
