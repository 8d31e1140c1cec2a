"""Canned estimators: each is only a constructor (head + network + optimizers)."""

from trainer.canned.baseline import BaselineClassifier, BaselineEstimator, BaselineRegressor
from trainer.canned.boosted_trees import (BoostedTreesClassifier, BoostedTreesEstimator,
                                          BoostedTreesRegressor)
from trainer.canned.dnn import DNNClassifier, DNNEstimator, DNNRegressor
from trainer.canned.dnn_linear_combined import (DNNLinearCombinedClassifier,
                                                DNNLinearCombinedEstimator,
                                                DNNLinearCombinedRegressor)
from trainer.canned.kmeans import KMeansClustering
from trainer.canned.linear import LinearClassifier, LinearEstimator, LinearRegressor
from trainer.canned.rnn import RNNClassifier, RNNEstimator

__all__ = [
    "BaselineClassifier", "BaselineEstimator", "BaselineRegressor",
    "DNNClassifier", "DNNEstimator", "DNNRegressor",
    "DNNLinearCombinedClassifier", "DNNLinearCombinedEstimator", "DNNLinearCombinedRegressor",
    "LinearClassifier", "LinearEstimator", "LinearRegressor", "KMeansClustering",
    "BoostedTreesClassifier", "BoostedTreesEstimator", "BoostedTreesRegressor",
    "RNNClassifier", "RNNEstimator",
]
