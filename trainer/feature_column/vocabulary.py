"""Categorical columns with an explicit vocabulary (a list or a file).

The id of an in-vocabulary value is its position in the vocabulary. Other
values map to ``default_value`` (``-1``: dropped by indicator, embedding and
linear layers) or, with ``num_oov_buckets > 0``, to
``vocabulary_size + tf.strings.to_hash_bucket_fast(value, num_oov_buckets)``,
exactly as tf.feature_column's lookup tables did.

The lookup is table-free: the vocabulary becomes a sorted constant searched
with `tf.searchsorted` (strings by a 63-bit fingerprint, then compared
exactly). The layers therefore own no lookup-table resources, run the same in
eager mode and in `tf.function`, and export to a SavedModel with nothing but
variables to track. A vocabulary file is read when the column is first used
(at trace time), not when the graph runs; its contents become a constant of
the traced function, so an exported model does not need the file.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import numpy as np
import tensorflow as tf

from trainer.feature_column import inputs
from trainer.feature_column.base import CategoricalColumn, FeatureCache, IdWeightPair
from trainer.feature_column.categorical import check_positive_int
from trainer.feature_column.dtypes import categorical_dtype
from trainer.feature_column.numeric import _check_key

__all__ = [
    "VocabularyFileCategoricalColumn",
    "VocabularyListCategoricalColumn",
    "categorical_column_with_vocabulary_file",
    "categorical_column_with_vocabulary_list",
]

_LIST_FN = "categorical_column_with_vocabulary_list"
_FILE_FN = "categorical_column_with_vocabulary_file"
_FINGERPRINT_BUCKETS = 2**63 - 1


@dataclasses.dataclass(frozen=True)
class VocabularyListCategoricalColumn(CategoricalColumn):
    """Values looked up in an in-memory vocabulary; see `categorical_column_with_vocabulary_list`.

    Attributes:
        key: The raw feature key.
        vocabulary_list: Tuple of distinct strings or ints.
        dtype: tf.string or tf.int64.
        default_value: Id of out-of-vocabulary values when ``num_oov_buckets == 0``.
        num_oov_buckets: Number of hash buckets for out-of-vocabulary values.
    """

    key: str
    vocabulary_list: tuple
    dtype: tf.DType | None = None
    default_value: int = -1
    num_oov_buckets: int = 0

    def __post_init__(self) -> None:
        _check_key(self.key, _LIST_FN)
        vocab = self.vocabulary_list
        if isinstance(vocab, (str, bytes)) or not isinstance(vocab, (list, tuple, np.ndarray)):
            raise TypeError(
                f"{_LIST_FN} got vocabulary_list={vocab!r} for key {self.key!r}; expected a "
                "list of strings or ints."
            )
        vocab = tuple(v.item() if isinstance(v, np.generic) else v for v in vocab)
        if not vocab:
            raise ValueError(
                f"{_LIST_FN} got an empty vocabulary_list for key {self.key!r}; expected at "
                "least one value. How to fix: pass the known values, or use "
                "categorical_column_with_hash_bucket."
            )
        is_str = all(isinstance(v, str) for v in vocab)
        is_int = all(isinstance(v, int) and not isinstance(v, bool) for v in vocab)
        if not (is_str or is_int):
            raise TypeError(
                f"{_LIST_FN} got vocabulary_list={list(vocab)[:5]!r}... for key {self.key!r}; "
                "expected all strings or all ints."
            )
        dtype = self.dtype if self.dtype is not None else (tf.string if is_str else tf.int64)
        dtype = categorical_dtype(dtype, _LIST_FN, self.key)
        if (dtype == tf.string) != is_str:
            raise TypeError(
                f"{_LIST_FN} got dtype={dtype.name} with a vocabulary of "
                f"{'strings' if is_str else 'ints'} for key {self.key!r}; expected them to "
                "match. How to fix: drop dtype or convert the vocabulary."
            )
        _check_duplicates(vocab, _LIST_FN, self.key)
        _check_oov(self.default_value, self.num_oov_buckets, len(vocab), _LIST_FN, self.key)
        object.__setattr__(self, "vocabulary_list", vocab)
        object.__setattr__(self, "dtype", dtype)

    @property
    def name(self) -> str:
        return self.key

    @property
    def num_buckets(self) -> int:
        return len(self.vocabulary_list) + self.num_oov_buckets

    @property
    def parse_example_spec(self) -> dict[str, Any]:
        return {self.key: tf.io.VarLenFeature(self.dtype)}

    def transform_feature(self, cache: FeatureCache, state) -> IdWeightPair:
        return _lookup(cache.get(self.key, state), self.vocabulary_list, key=self.key,
                       column_fn=_LIST_FN, dtype=self.dtype, default_value=self.default_value,
                       num_oov_buckets=self.num_oov_buckets)


@dataclasses.dataclass(frozen=True)
class VocabularyFileCategoricalColumn(CategoricalColumn):
    """Values looked up in a vocabulary file; see `categorical_column_with_vocabulary_file`.

    Attributes:
        key: The raw feature key.
        vocabulary_file: Path of a text file with one value per line.
        vocabulary_size: Number of lines used (the first ones).
        num_oov_buckets: Number of hash buckets for out-of-vocabulary values.
        default_value: Id of out-of-vocabulary values when ``num_oov_buckets == 0``.
        dtype: tf.string or tf.int64 (lines parsed as ints).
    """

    key: str
    vocabulary_file: str
    vocabulary_size: int | None = None
    num_oov_buckets: int = 0
    default_value: int | None = None
    dtype: tf.DType = tf.string

    def __post_init__(self) -> None:
        _check_key(self.key, _FILE_FN)
        if not isinstance(self.vocabulary_file, str) or not self.vocabulary_file:
            raise ValueError(
                f"{_FILE_FN} got vocabulary_file={self.vocabulary_file!r} for key "
                f"{self.key!r}; expected a non-empty path."
            )
        object.__setattr__(self, "dtype", categorical_dtype(self.dtype, _FILE_FN, self.key))
        size = self.vocabulary_size
        if size is None:  # as tf.feature_column: count the lines now
            size = len(_read_vocabulary(self.vocabulary_file, self.key))
        check_positive_int(size, _FILE_FN, "vocabulary_size", self.key)
        object.__setattr__(self, "vocabulary_size", size)
        default = -1 if self.default_value is None else self.default_value
        _check_oov(default, self.num_oov_buckets, size, _FILE_FN, self.key)

    @property
    def name(self) -> str:
        return self.key

    @property
    def num_buckets(self) -> int:
        return self.vocabulary_size + self.num_oov_buckets

    @property
    def parse_example_spec(self) -> dict[str, Any]:
        return {self.key: tf.io.VarLenFeature(self.dtype)}

    def transform_feature(self, cache: FeatureCache, state) -> IdWeightPair:
        default = -1 if self.default_value is None else self.default_value
        return _lookup(cache.get(self.key, state), _vocabulary_values(self), key=self.key,
                       column_fn=_FILE_FN, dtype=self.dtype, default_value=default,
                       num_oov_buckets=self.num_oov_buckets)


def categorical_column_with_vocabulary_list(key: str, vocabulary_list, dtype=None,
                                            default_value: int = -1,
                                            num_oov_buckets: int = 0
                                            ) -> VocabularyListCategoricalColumn:
    """Represents values looked up in an in-memory vocabulary.

    Args:
        key: The raw feature key (also the column name).
        vocabulary_list: Distinct strings or ints; a value's id is its position.
        dtype: tf.string or an integer dtype; inferred from the list if None.
        default_value: Id for out-of-vocabulary values (``-1``: ignored).
            Only with ``num_oov_buckets == 0``.
        num_oov_buckets: Out-of-vocabulary values hash into ids
            ``[len(vocabulary_list), len(vocabulary_list) + num_oov_buckets)``.

    Returns:
        A `VocabularyListCategoricalColumn`.

    Example:
        >>> from trainer.feature_column import DenseFeatures, indicator_column
        >>> color = categorical_column_with_vocabulary_list("color", ["red", "blue"])
        >>> layer = DenseFeatures([indicator_column(color)])
        >>> layer({"color": tf.constant([["blue"], ["green"]])}).numpy().tolist()
        [[0.0, 1.0], [0.0, 0.0]]
    """
    return VocabularyListCategoricalColumn(key=key, vocabulary_list=vocabulary_list, dtype=dtype,
                                           default_value=default_value,
                                           num_oov_buckets=num_oov_buckets)


def categorical_column_with_vocabulary_file(key: str, vocabulary_file: str,
                                            vocabulary_size: int | None = None,
                                            num_oov_buckets: int = 0,
                                            default_value: int | None = None,
                                            dtype=tf.string) -> VocabularyFileCategoricalColumn:
    """Represents values looked up in a vocabulary file (one value per line).

    Args:
        key: The raw feature key (also the column name).
        vocabulary_file: Path of the file; a value's id is its line number.
        vocabulary_size: Use only the first lines; None means all of them.
        num_oov_buckets: Out-of-vocabulary values hash into
            ``[vocabulary_size, vocabulary_size + num_oov_buckets)``.
        default_value: Id for out-of-vocabulary values when ``num_oov_buckets``
            is 0; None means ``-1`` (ignored).
        dtype: tf.string or an integer dtype (lines are parsed as ints).

    Returns:
        A `VocabularyFileCategoricalColumn`.

    Example:
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "colors.txt")
        >>> _ = open(path, "w").write("red\\nblue\\n")
        >>> color = categorical_column_with_vocabulary_file("color", path)
        >>> color.num_buckets
        2
    """
    return VocabularyFileCategoricalColumn(
        key=key, vocabulary_file=vocabulary_file, vocabulary_size=vocabulary_size,
        num_oov_buckets=num_oov_buckets, default_value=default_value, dtype=dtype)


def _check_duplicates(vocab: tuple, column_fn: str, key: str) -> None:
    if len(set(vocab)) != len(vocab):
        seen, duplicate = set(), None
        for value in vocab:
            if value in seen:
                duplicate = value
                break
            seen.add(value)
        raise ValueError(
            f"{column_fn} got a duplicate vocabulary value {duplicate!r} for key {key!r}; "
            "expected distinct values. How to fix: deduplicate the vocabulary."
        )


def _check_oov(default_value, num_oov_buckets, vocab_size: int, column_fn: str, key: str) -> None:
    check_positive_int(num_oov_buckets, column_fn, "num_oov_buckets", key, allow_zero=True)
    if isinstance(default_value, bool) or not isinstance(default_value, int):
        raise TypeError(
            f"{column_fn} got default_value={default_value!r} for key {key!r}; expected an int.")
    if num_oov_buckets and default_value != -1:
        raise ValueError(
            f"{column_fn} got default_value={default_value} and "
            f"num_oov_buckets={num_oov_buckets} for key {key!r}; expected only one of them. "
            "How to fix: out-of-vocabulary values go to the OOV buckets, so drop default_value."
        )
    if default_value != -1 and not 0 <= default_value < vocab_size:
        raise ValueError(
            f"{column_fn} got default_value={default_value} for key {key!r}; expected -1 or "
            f"an id in [0, {vocab_size})."
        )


def _read_vocabulary(path: str, key: str) -> list[str]:
    _read_vocabulary_exists(path, key)
    with tf.io.gfile.GFile(path, "r") as handle:
        return handle.read().splitlines()


def _read_vocabulary_exists(path: str, key: str) -> None:
    if not tf.io.gfile.exists(path):
        raise ValueError(
            f"{_FILE_FN} got vocabulary_file={path!r} for key {key!r}, which does not exist. "
            "How to fix: check the path (it is read when the column is first used)."
        )


def _vocabulary_values(column: VocabularyFileCategoricalColumn) -> tuple:
    _read_vocabulary_exists(column.vocabulary_file, column.key)
    mtime = tf.io.gfile.stat(column.vocabulary_file).mtime_nsec
    return _parse_vocabulary_file(column.vocabulary_file, mtime, column.vocabulary_size,
                                  column.dtype == tf.string, column.key)


@functools.lru_cache(maxsize=32)
def _parse_vocabulary_file(path: str, mtime: int, size: int, is_str: bool, key: str) -> tuple:
    del mtime  # part of the cache key only: an edited file is read again
    lines = _read_vocabulary(path, key)
    if size > len(lines):
        raise ValueError(
            f"{_FILE_FN} got vocabulary_size={size} for key {key!r}; expected at most the "
            f"{len(lines)} lines of {path}. How to fix: lower vocabulary_size or leave it None."
        )
    lines = lines[:size]
    if is_str:
        values = tuple(lines)
    else:
        try:
            values = tuple(int(line) for line in lines)
        except ValueError as error:
            raise ValueError(
                f"{_FILE_FN} got vocabulary_file={path!r} for key {key!r} with a line that is "
                f"not an int ({error}); expected one integer per line for an integer dtype."
            ) from error
    _check_duplicates(values, _FILE_FN, key)
    return values


@functools.lru_cache(maxsize=64)
def _sorted_keys(vocab: tuple, is_str: bool) -> tuple[np.ndarray, np.ndarray]:
    """Returns (sorted search keys, vocabulary index of each), computed once."""
    with tf.init_scope():
        if is_str:
            keys = tf.strings.to_hash_bucket_fast(tf.constant(vocab, tf.string),
                                                  _FINGERPRINT_BUCKETS).numpy()
        else:
            keys = np.asarray(vocab, dtype=np.int64)
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    if is_str and len(sorted_keys) > 1 and np.any(sorted_keys[1:] == sorted_keys[:-1]):
        # Two distinct strings with one 63-bit fingerprint; never seen in practice.
        raise ValueError(
            "categorical vocabulary has two values with the same 63-bit fingerprint; "
            "expected distinct fingerprints. How to fix: rename one of the values."
        )
    return sorted_keys, order.astype(np.int64)


def _lookup(raw, vocab: tuple, *, key: str, column_fn: str, dtype: tf.DType,
            default_value: int, num_oov_buckets: int) -> IdWeightPair:
    raw = inputs.check_dtype(raw, key=key, column_fn=column_fn, dtype=dtype)
    sparse = inputs.categorical_input(raw, key=key, column_fn=column_fn)
    values = sparse.values
    is_str = dtype == tf.string
    sorted_keys, order = _sorted_keys(vocab, is_str)
    search = (tf.strings.to_hash_bucket_fast(values, _FINGERPRINT_BUCKETS) if is_str
              else values)
    position = tf.searchsorted(tf.constant(sorted_keys), search, side="left", out_type=tf.int64)
    position = tf.minimum(position, len(vocab) - 1)
    found = tf.equal(tf.gather(tf.constant(sorted_keys), position), search)
    index = tf.gather(tf.constant(order), position)
    if is_str:
        found = tf.logical_and(found, tf.equal(tf.gather(tf.constant(vocab, tf.string), index),
                                               values))
    if num_oov_buckets:
        as_text = values if is_str else tf.strings.as_string(values)
        missing = len(vocab) + tf.strings.to_hash_bucket_fast(as_text, num_oov_buckets)
    else:
        missing = tf.fill(tf.shape(values), tf.constant(default_value, tf.int64))
    ids = tf.where(found, index, missing)
    return IdWeightPair(tf.SparseTensor(sparse.indices, ids, sparse.dense_shape), None)
