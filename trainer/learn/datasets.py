"""TF.Learn's ``datasets.load_dataset``, from scikit-learn's bundled copies (no download)."""

from __future__ import annotations

import collections

import numpy as np

__all__ = ["Dataset", "load_dataset", "load_iris"]

Dataset = collections.namedtuple("Dataset", ["data", "target"])


def load_iris():
    """Iris: 150 rows of 4 float32 features, int32 targets 0..2 (needs scikit-learn)."""
    try:
        from sklearn.datasets import load_iris as sk_load_iris
    except ImportError:
        raise ImportError("learn.datasets.load_iris needs scikit-learn (the dev extra): "
                          "pip install scikit-learn.") from None
    bunch = sk_load_iris()
    return Dataset(data=bunch.data.astype(np.float32), target=bunch.target.astype(np.int32))


_LOADERS = {"iris": load_iris}


def load_dataset(name, size="small", test_with_fake_data=False):
    """Loads a dataset by name; only ``'iris'`` is available (offline)."""
    del size
    if test_with_fake_data:
        raise NotImplementedError("load_dataset(test_with_fake_data=True) is not supported.")
    if name not in _LOADERS:
        raise ValueError(f"load_dataset got name={name!r}; available: {sorted(_LOADERS)} "
                         "(TF.Learn's other datasets needed a download).")
    return _LOADERS[name]()
