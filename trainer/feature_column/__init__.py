"""Feature columns: a TF2-native re-creation of `tf.feature_column`.

Columns are frozen dataclasses that describe inputs; `DenseFeatures` /
`input_layer` turn them into a deep model's input tensor and `LinearModel` /
`linear_model` into a weighted sum. See docs/feature_columns.md.

Example:
    >>> import tensorflow as tf
    >>> from trainer import feature_column as fc
    >>> age = fc.bucketized_column(fc.numeric_column("age"), [30.0, 60.0])
    >>> fc.DenseFeatures([age])({"age": tf.constant([[45.0]])}).numpy().tolist()
    [[0.0, 1.0, 0.0]]
"""

from trainer.feature_column.base import (
    CategoricalColumn, DenseColumn, FeatureCache, FeatureColumn, IdWeightPair)
from trainer.feature_column.bucketized import BucketizedColumn, bucketized_column
from trainer.feature_column.categorical import (
    HashedCategoricalColumn, IdentityCategoricalColumn, categorical_column_with_hash_bucket,
    categorical_column_with_identity)
from trainer.feature_column.config import (
    deserialize, deserialize_columns, serialize, serialize_columns)
from trainer.feature_column.crossed import CrossedColumn, crossed_column
from trainer.feature_column.dense_features import DenseFeatures, input_layer
from trainer.feature_column.embedding import (
    EmbeddingColumn, SharedEmbeddingColumn, embedding_column, shared_embeddings)
from trainer.feature_column.indicator import IndicatorColumn, indicator_column
from trainer.feature_column.linear_model import LinearModel, linear_model
from trainer.feature_column.numeric import NumericColumn, numeric_column
from trainer.feature_column.parse_spec import make_parse_example_spec
from trainer.feature_column.sequence import (
    SequenceCategoricalColumn, SequenceNumericColumn, sequence_categorical_column_with_hash_bucket,
    sequence_categorical_column_with_identity, sequence_categorical_column_with_vocabulary_file,
    sequence_categorical_column_with_vocabulary_list, sequence_numeric_column)
from trainer.feature_column.sequence_features import SequenceFeatures, concatenate_context_input
from trainer.feature_column.state import LayerState
from trainer.feature_column.vocabulary import (
    VocabularyFileCategoricalColumn, VocabularyListCategoricalColumn,
    categorical_column_with_vocabulary_file, categorical_column_with_vocabulary_list)
from trainer.feature_column.weighted import (
    WeightedCategoricalColumn, weighted_categorical_column)

__all__ = [
    "BucketizedColumn",
    "CategoricalColumn",
    "CrossedColumn",
    "DenseColumn",
    "DenseFeatures",
    "EmbeddingColumn",
    "FeatureCache",
    "FeatureColumn",
    "HashedCategoricalColumn",
    "IdWeightPair",
    "IdentityCategoricalColumn",
    "IndicatorColumn",
    "LayerState",
    "LinearModel",
    "NumericColumn",
    "SequenceCategoricalColumn",
    "SequenceFeatures",
    "SequenceNumericColumn",
    "SharedEmbeddingColumn",
    "VocabularyFileCategoricalColumn",
    "VocabularyListCategoricalColumn",
    "WeightedCategoricalColumn",
    "bucketized_column",
    "categorical_column_with_hash_bucket",
    "categorical_column_with_identity",
    "categorical_column_with_vocabulary_file",
    "categorical_column_with_vocabulary_list",
    "concatenate_context_input",
    "crossed_column",
    "deserialize",
    "deserialize_columns",
    "embedding_column",
    "indicator_column",
    "input_layer",
    "linear_model",
    "make_parse_example_spec",
    "numeric_column",
    "sequence_categorical_column_with_hash_bucket",
    "sequence_categorical_column_with_identity",
    "sequence_categorical_column_with_vocabulary_file",
    "sequence_categorical_column_with_vocabulary_list",
    "sequence_numeric_column",
    "serialize",
    "serialize_columns",
    "shared_embeddings",
    "weighted_categorical_column",
]
