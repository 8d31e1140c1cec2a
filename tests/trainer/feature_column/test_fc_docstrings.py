"""The runnable examples in the public docstrings stay true."""

import doctest
import importlib

import pytest

MODULES = [
    "base", "bucketized", "categorical", "config", "crossed", "dense_features", "embedding",
    "indicator", "linear_model", "numeric", "parse_spec", "state", "vocabulary", "weighted",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(f"trainer.feature_column.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_package_docstring_example():
    module = importlib.import_module("trainer.feature_column")
    assert doctest.testmod(module).failed == 0
