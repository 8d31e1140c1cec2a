"""trainer.sklearn: scikit-learn conventions, GridSearchCV, Pipeline, inputs and errors."""

import doctest
import os

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.datasets import load_iris
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import estimator_checks

import trainer
from trainer import sklearn as tsk

X_IRIS, Y_IRIS = load_iris(return_X_y=True)
RNG = np.random.default_rng(0)
X_REG = RNG.normal(size=(200, 3)).astype(np.float32)
Y_REG = X_REG @ np.array([1.0, -2.0, 0.5], np.float32) + 0.3
ALL = [tsk.LinearClassifier, tsk.LinearRegressor, tsk.DNNClassifier, tsk.DNNRegressor,
       tsk.DNNLinearCombinedClassifier, tsk.DNNLinearCombinedRegressor]


# -- scikit-learn's estimator rules (no fitting) ------------------------------------------
@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_params_round_trip_and_no_work_in_init(cls):
    est = cls(steps=7, batch_size=5, random_state=3)
    params = est.get_params()
    assert params["steps"] == 7 and params["batch_size"] == 5 and params["random_state"] == 3
    assert clone(est).get_params() == params
    assert est.set_params(steps=11) is est and est.get_params()["steps"] == 11
    name = cls.__name__
    estimator_checks.check_no_attributes_set_in_init(name, cls())
    estimator_checks.check_parameters_default_constructible(name, cls())
    estimator_checks.check_get_params_invariance(name, cls())
    estimator_checks.check_set_params(name, cls())


def test_hidden_units_stored_unchanged():
    units = [16, 8]
    clf = tsk.DNNClassifier(hidden_units=units)
    assert clf.get_params()["hidden_units"] is units


# -- training -----------------------------------------------------------------------------
def test_pipeline_with_scaler_learns_iris():
    pipe = Pipeline([("scale", StandardScaler()),
                     ("clf", tsk.DNNClassifier(hidden_units=[10], steps=300, random_state=0))])
    assert pipe.fit(X_IRIS, Y_IRIS) is pipe
    assert pipe.score(X_IRIS, Y_IRIS) > 0.9
    clf = pipe.named_steps["clf"]
    assert clf.classes_.tolist() == [0, 1, 2] and clf.n_features_in_ == 4
    proba = pipe.predict_proba(X_IRIS[:5])
    assert proba.shape == (5, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)


def test_grid_search_over_hidden_units_on_iris():
    X = StandardScaler().fit_transform(X_IRIS)
    search = GridSearchCV(tsk.DNNClassifier(steps=150, random_state=0),
                          {"hidden_units": [[4], [16]]}, cv=2)
    search.fit(X, Y_IRIS)
    assert search.best_params_["hidden_units"] in ([4], [16])
    assert len(search.cv_results_["mean_test_score"]) == 2
    assert search.best_score_ > 0.7
    assert search.best_estimator_.score(X, Y_IRIS) > 0.85


def test_string_labels_binary_linear_classifier():
    X = RNG.normal(size=(120, 2))
    y = np.where(X[:, 0] + X[:, 1] > 0, "yes", "no")
    clf = tsk.LinearClassifier(steps=200, random_state=0).fit(X, y)
    assert clf.classes_.tolist() == ["no", "yes"]
    assert set(clf.predict(X)) <= {"no", "yes"}
    assert clf.predict_proba(X).shape == (120, 2)
    assert clf.score(X, y) > 0.9


def test_dataframe_inputs_infer_one_column_each():
    frame = pd.DataFrame(X_REG, columns=["a", "b", "c"])
    reg = tsk.LinearRegressor(steps=300, learning_rate=0.5, random_state=0).fit(frame, pd.Series(Y_REG))
    assert reg.feature_names_in_.tolist() == ["a", "b", "c"]
    assert reg.score(frame, Y_REG) > 0.9
    # Column order in predict does not matter; columns are matched by name.
    assert np.allclose(reg.predict(frame[["c", "a", "b"]]), reg.predict(frame), atol=1e-5)
    with pytest.raises(ValueError, match=r"fitted on a DataFrame with columns \['a', 'b', 'c'\]"):
        reg.predict(X_REG)
    with pytest.raises(ValueError, match=r"without columns \['c'\]"):
        reg.predict(frame[["a", "b"]])


def test_dnn_regressor_one_and_two_targets():
    reg = tsk.DNNRegressor(hidden_units=[16], steps=400, learning_rate=0.1, random_state=0)
    assert reg.fit(X_REG, Y_REG).score(X_REG, Y_REG) > 0.8
    assert reg.predict(X_REG[:3]).shape == (3,)
    two = np.stack([Y_REG, -Y_REG], axis=1)
    assert reg.fit(X_REG, two, steps=50).predict(X_REG[:3]).shape == (3, 2)


def test_wide_and_deep_classifier():
    # Wide & deep's default rates are tf.estimator's (DNN 0.001-ish, linear 0.005): far too low
    # for 200 steps on iris (0.51 accuracy); 0.05 each reaches 0.96-0.97 for seeds 0-2.
    clf = tsk.DNNLinearCombinedClassifier(hidden_units=[8], steps=200, random_state=0,
                                          learning_rate=0.05, linear_learning_rate=0.05)
    X = StandardScaler().fit_transform(X_IRIS)
    assert clf.fit(X, Y_IRIS).score(X, Y_IRIS) > 0.8
    names = clf.estimator_.get_variable_names()
    assert any(n.startswith("dnn/") for n in names) and any(n.startswith("linear/") for n in names)


def test_each_fit_trains_a_fresh_model_under_model_dir(tmp_path):
    clf = tsk.LinearClassifier(steps=20, model_dir=str(tmp_path))
    first = clf.fit(X_IRIS, Y_IRIS).model_dir_
    second = clf.fit(X_IRIS, Y_IRIS, steps=30).model_dir_
    assert first != second and os.path.dirname(first) == str(tmp_path)
    assert trainer.checkpoints.checkpoint_step(trainer.checkpoints.latest_checkpoint(second)) == 30
    assert os.path.isdir(first)  # the user's directory is never deleted


def test_temporary_model_dir_is_removed_at_refit():
    clf = tsk.LinearClassifier(steps=10)
    first = clf.fit(X_IRIS, Y_IRIS).model_dir_
    assert os.path.isdir(first)
    second = clf.fit(X_IRIS, Y_IRIS).model_dir_
    assert not os.path.exists(first) and os.path.isdir(second)


def test_learning_rate_goes_to_a_named_optimizer():
    clf = tsk.LinearClassifier(optimizer="SGD", learning_rate=0.3, steps=10).fit(X_IRIS, Y_IRIS)
    names = clf.estimator_.get_variable_names()
    assert not any("Ftrl" in n for n in names)  # plain SGD keeps no slots; Ftrl (default) would


# -- inference of feature columns ---------------------------------------------------------------
def test_infer_real_valued_columns():
    (col,) = tsk.infer_real_valued_columns_from_input(np.zeros((5, 4)))
    assert col.key == tsk.ARRAY_FEATURE_KEY and col.shape == (4,)
    cols = tsk.infer_real_valued_columns_from_input(pd.DataFrame({"a": [1, 2], 3: [0.5, 1.0]}))
    assert [(c.key, c.shape) for c in cols] == [("a", (1,)), ("3", (1,))]
    cols = tsk.infer_real_valued_columns_from_input({"img": np.zeros((2, 3, 3)), "v": np.zeros(2)})
    assert [(c.key, c.shape) for c in cols] == [("img", (3, 3)), ("v", (1,))]


@pytest.mark.parametrize("x, message", [
    (pd.DataFrame({"s": ["a", "b"], "n": [1, 2]}), r"columns \['s'\] that are not numeric"),
    (np.array([["a"]]), r"dtype <U1; expected numbers"),
    ({}, r"got x=\{\}"),
    ({"v": np.float32(1.0)}, r"got a scalar for 'v'"),
    (np.zeros((3, 0)), r"expected at least one feature"),
])
def test_infer_real_valued_columns_errors(x, message):
    with pytest.raises(ValueError, match=message):
        tsk.infer_real_valued_columns_from_input(x)


# -- errors ----------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, fit_kwargs, message", [
    ({"steps": 0}, {}, r"LinearClassifier.fit got steps=0; expected an int > 0"),
    ({}, {"batch_size": -1}, r"LinearClassifier.fit got batch_size=-1; expected an int > 0"),
    ({"optimizer": trainer.optimizers.SGD(0.1), "learning_rate": 0.1}, {},
     r"LinearClassifier got learning_rate=0.1 with optimizer=.*How to fix"),
])
def test_fit_argument_errors(kwargs, fit_kwargs, message):
    with pytest.raises(ValueError, match=message):
        tsk.LinearClassifier(**kwargs).fit(X_IRIS, Y_IRIS, **fit_kwargs)


def test_fit_data_errors():
    clf = tsk.LinearClassifier(steps=5)
    with pytest.raises(ValueError, match=r"got y=None"):
        clf.fit(X_IRIS, None)
    with pytest.raises(ValueError, match=r"single class \[1\].*at least 2 classes"):
        clf.fit(X_IRIS, np.ones(150, np.int64))
    with pytest.raises(ValueError, match=r"150 rows and y with 3"):
        clf.fit(X_IRIS, [0, 1, 0])
    with pytest.raises(ValueError, match=r"shape \(150,\); expected a 2-D array.*reshape"):
        clf.fit(X_IRIS[:, 0], Y_IRIS)
    with pytest.raises(ValueError, match=r"y with shape \(150, 2\); expected one class per row"):
        clf.fit(X_IRIS, np.zeros((150, 2)))
    with pytest.raises(TypeError, match=r"got config='nope'; expected a trainer.RunConfig"):
        tsk.LinearClassifier(config="nope").fit(X_IRIS, Y_IRIS)
    with pytest.raises(ValueError, match=r"y with shape \(150,\) and dtype <U1; expected numbers"):
        tsk.LinearRegressor().fit(X_IRIS, np.array(["a"] * 150))
    with pytest.raises(ValueError, match=r"got X of dtype <U1; expected numbers"):
        tsk.LinearRegressor().fit(np.array([["a"], ["b"]]), [1.0, 2.0])


def test_predict_errors():
    with pytest.raises(NotFittedError):
        tsk.DNNClassifier().predict(X_IRIS)
    clf = tsk.LinearClassifier(steps=5).fit(X_IRIS, Y_IRIS)
    with pytest.raises(ValueError, match=r"X with 3 features; the model was fitted with 4"):
        clf.predict(X_IRIS[:, :3])
    with pytest.raises(ValueError, match=r"got hidden_units=\[\]; expected a non-empty list"):
        tsk.DNNClassifier(hidden_units=[], steps=5).fit(X_IRIS, Y_IRIS)


def test_docstring_examples_run():
    assert doctest.testmod(tsk, optionflags=doctest.ELLIPSIS).failed == 0
