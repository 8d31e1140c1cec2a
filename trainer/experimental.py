"""``tf.estimator.experimental`` / ``tf.compat.v1.estimator.experimental`` names.

Example:
    >>> from trainer import experimental
    >>> experimental.KMeans is experimental.KMeansClustering
    True
"""

from trainer.canned.kmeans import KMeansClustering
from trainer.canned.rnn import RNNClassifier, RNNEstimator

KMeans = KMeansClustering

__all__ = ["KMeans", "KMeansClustering", "RNNClassifier", "RNNEstimator"]
