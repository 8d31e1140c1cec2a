import numpy as np
import pandas as pd
import pytest

import trainer
from tests.trainer import models


def test_numpy_input_fn_epochs_and_batches():
    fn = trainer.numpy_input_fn({"x": np.arange(10.0)}, np.arange(10), batch_size=4, num_epochs=2, shuffle=False)
    batches = list(fn())
    assert [len(b[1]) for b in batches] == [4, 4, 4, 4, 4]
    assert batches[0][0]["x"].numpy().tolist() == [0.0, 1.0, 2.0, 3.0]
    shuffled = trainer.numpy_input_fn({"x": np.arange(100.0)}, shuffle=True, batch_size=100)
    values = next(iter(shuffled()))["x"].numpy()
    assert sorted(values.tolist()) == list(range(100)) and values.tolist() != list(range(100))


def test_numpy_input_fn_trains_an_estimator(tmp_path):
    est = trainer.Estimator(models.linear_model_fn, model_dir=str(tmp_path))
    est.train(trainer.numpy_input_fn({"x": models.X}, models.Y, batch_size=32, num_epochs=None, shuffle=True), steps=200)
    result = est.evaluate(trainer.numpy_input_fn({"x": models.X}, models.Y, shuffle=False))
    assert result["mse"] < 0.01


def test_numpy_input_fn_errors():
    with pytest.raises(ValueError, match="shuffle=None; it must be given explicitly"):
        trainer.numpy_input_fn({"x": np.zeros(3)})
    with pytest.raises(ValueError, match=r"arrays of different lengths \{\"x\['x'\]\": 3, 'y': 2\}"):
        trainer.numpy_input_fn({"x": np.zeros(3)}, np.zeros(2), shuffle=False)
    with pytest.raises(ValueError, match="batch_size=0"):
        trainer.numpy_input_fn({"x": np.zeros(3)}, batch_size=0, shuffle=False)


def test_pandas_input_fn():
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": ["x", "y", "z"]})
    labels = pd.Series([0, 1, 0])
    features, y = next(iter(trainer.pandas_input_fn(frame, labels, batch_size=3, shuffle=False)()))
    assert features["b"].numpy().tolist() == [b"x", b"y", b"z"]
    assert y.numpy().tolist() == [0, 1, 0]
    with pytest.raises(ValueError, match="the indexes of x and y differ"):
        trainer.pandas_input_fn(frame, pd.Series([0, 1, 0], index=[5, 6, 7]), shuffle=False)
    with pytest.raises(ValueError, match="target_column='a' is also a column of x"):
        trainer.pandas_input_fn(frame, labels, shuffle=False, target_column="a")
