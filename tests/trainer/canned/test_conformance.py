"""One conformance suite over every canned estimator and head.

Each case trains, evaluates, predicts, exports (parsing receiver), reloads the
SavedModel and compares it with `predict`, reloads the Estimator and resumes training,
then warm-starts a new estimator. One more test serves every case's export from one
`python -m serving` and checks its Predict answers. KMeansClustering and GANEstimator, whose
inputs and outputs differ, have the same checks in tests/trainer/test_kmeans.py,
tests/trainer/test_gan.py and tests/trainer/test_served_estimators.py.
"""

import numpy as np
import pytest
import tensorflow as tf

import trainer
from trainer import feature_column as fc
from trainer import heads

RNG = np.random.default_rng(3)
N = 240
X = RNG.normal(size=(N, 2)).astype(np.float32)
CAT = RNG.choice(["a", "b", "c"], size=N)
SCORE = X[:, 0] - X[:, 1] + (CAT == "a") * 1.0
LABELS = {
    "binary": (SCORE > 0.3).astype(np.int64),
    "multi": np.digitize(SCORE, [-0.5, 0.8]).astype(np.int64),
    "regression": SCORE.astype(np.float32),
    "multilabel": np.stack([SCORE > 0, X[:, 0] > 0, CAT == "b"], axis=1).astype(np.int64),
    "count": np.round(np.exp(np.clip(SCORE, -2, 2) / 2)).astype(np.float32),
    "probability": (1 / (1 + np.exp(-SCORE))).astype(np.float32),
}

X_COL = fc.numeric_column("x", shape=2)
CAT_COL = fc.categorical_column_with_vocabulary_list("cat", ["a", "b", "c"])
DENSE = [X_COL, fc.embedding_column(CAT_COL, 2)]
SPARSE = [X_COL, CAT_COL]
TINY = trainer.optimizers.SGD(1e-12)
SEQ_X = fc.sequence_numeric_column("x")


# Boosted trees split buckets: x's two elements bucketized, cat one-hot. Their parse spec equals SPARSE's.
TREES = [fc.bucketized_column(X_COL, [-1.0, 0.0, 1.0]), fc.indicator_column(CAT_COL)]
# Boosted trees have no optimizer and no warm start (as in tf.estimator): the suite skips that part.
NO_WARM_START = {"BoostedTreesClassifier", "BoostedTreesClassifier3", "BoostedTreesRegressor"}


def cases():
    yield "LinearClassifier", "binary", lambda d, o, w: trainer.LinearClassifier(SPARSE, model_dir=d, optimizer=o or "Ftrl", warm_start_from=w)
    yield "LinearClassifier3", "multi", lambda d, o, w: trainer.LinearClassifier(SPARSE, model_dir=d, n_classes=3, optimizer=o or "Ftrl", warm_start_from=w)
    yield "LinearRegressor", "regression", lambda d, o, w: trainer.LinearRegressor(SPARSE, model_dir=d, optimizer=o or "Ftrl", warm_start_from=w)
    yield "DNNClassifier", "binary", lambda d, o, w: trainer.DNNClassifier([8, 4], DENSE, model_dir=d, optimizer=o or "Adagrad", warm_start_from=w, dropout=0.1, batch_norm=True)
    yield "DNNClassifier3", "multi", lambda d, o, w: trainer.DNNClassifier([8], DENSE, model_dir=d, n_classes=3, optimizer=o or "Adam", warm_start_from=w)
    yield "DNNRegressor", "regression", lambda d, o, w: trainer.DNNRegressor([8], DENSE, model_dir=d, optimizer=o or "Adagrad", warm_start_from=w)
    yield "DNNLinearCombinedClassifier", "binary", lambda d, o, w: trainer.DNNLinearCombinedClassifier(
        model_dir=d, linear_feature_columns=SPARSE, dnn_feature_columns=DENSE, dnn_hidden_units=[8],
        linear_optimizer=o or "Ftrl", dnn_optimizer=o or "Adagrad", warm_start_from=w)
    yield "DNNLinearCombinedRegressor", "regression", lambda d, o, w: trainer.DNNLinearCombinedRegressor(
        model_dir=d, linear_feature_columns=SPARSE, dnn_feature_columns=DENSE, dnn_hidden_units=[8],
        linear_optimizer=o or "Ftrl", dnn_optimizer=o or "Adagrad", warm_start_from=w)
    yield "BaselineClassifier", "binary", lambda d, o, w: trainer.BaselineClassifier(model_dir=d, optimizer=o or "Ftrl", warm_start_from=w)
    yield "BaselineRegressor", "regression", lambda d, o, w: trainer.BaselineRegressor(model_dir=d, optimizer=o or "Ftrl", warm_start_from=w)
    yield "MultiLabelHead", "multilabel", lambda d, o, w: trainer.DNNEstimator(heads.MultiLabelHead(3, thresholds=[0.3]), [8], DENSE, model_dir=d, optimizer=o or "Adagrad", warm_start_from=w)
    yield "PoissonRegressionHead", "count", lambda d, o, w: trainer.LinearEstimator(heads.PoissonRegressionHead(), SPARSE, model_dir=d, optimizer=o or "Ftrl", warm_start_from=w)
    yield "LogisticRegressionHead", "probability", lambda d, o, w: trainer.DNNEstimator(heads.LogisticRegressionHead(), [4], DENSE, model_dir=d, optimizer=o or "Adagrad", warm_start_from=w)
    # 100 trees of depth 6 with 2 batches per layer take 1,200 steps: 40 steps and a resume fit in.
    yield "BoostedTreesClassifier", "binary", lambda d, o, w: trainer.BoostedTreesClassifier(
        TREES, n_batches_per_layer=2, model_dir=d)
    yield "BoostedTreesClassifier3", "multi", lambda d, o, w: trainer.BoostedTreesClassifier(
        TREES, n_batches_per_layer=2, model_dir=d, n_classes=3)
    yield "BoostedTreesRegressor", "regression", lambda d, o, w: trainer.BoostedTreesRegressor(
        TREES, n_batches_per_layer=2, model_dir=d)
    # The RNNs read the dense x [batch, 2] as a 2-step sequence, with cat as a context feature.
    yield "RNNClassifier", "binary", lambda d, o, w: trainer.experimental.RNNClassifier(
        [SEQ_X], [fc.embedding_column(CAT_COL, 2)], units=[4], cell_type="lstm", model_dir=d,
        optimizer=o or "Adagrad", warm_start_from=w)
    yield "RNNClassifier3", "multi", lambda d, o, w: trainer.experimental.RNNClassifier(
        [SEQ_X], [fc.embedding_column(CAT_COL, 2)], units=[4, 3], n_classes=3, model_dir=d,
        optimizer=o or "Adam", warm_start_from=w)
    yield "RNNEstimator", "regression", lambda d, o, w: trainer.experimental.RNNEstimator(
        heads.RegressionHead(), [SEQ_X], [fc.embedding_column(CAT_COL, 2)], units=[4], cell_type="gru",
        model_dir=d, optimizer=o or "Adagrad", warm_start_from=w)


CASES = list(cases())

EXPECTED_METRICS = {
    "binary": {"accuracy", "auc", "auc_precision_recall", "precision", "recall", "label/mean",
               "prediction/mean", "accuracy_baseline", "average_loss", "loss", "global_step"},
    "multi": {"accuracy", "average_loss", "loss", "global_step"},
    "regression": {"average_loss", "label/mean", "prediction/mean", "loss", "global_step"},
    "multilabel": {"auc", "auc_precision_recall", "average_loss", "loss", "global_step",
                   "accuracy/positive_threshold_0.3", "precision/positive_threshold_0.3",
                   "recall/positive_threshold_0.3"},
}
EXPECTED_METRICS["count"] = EXPECTED_METRICS["probability"] = EXPECTED_METRICS["regression"]

SERVING_OUTPUT = {"binary": "scores", "multi": "scores", "multilabel": "scores",
                  "regression": "outputs", "count": "outputs", "probability": "outputs"}


def input_fn(task, repeat):
    def fn():
        ds = tf.data.Dataset.from_tensor_slices(({"x": X, "cat": CAT}, LABELS[task])).batch(32)
        return ds.repeat() if repeat else ds
    return fn


def serialized(rows):
    out = []
    for i in rows:
        example = tf.train.Example(features=tf.train.Features(feature={
            "x": tf.train.Feature(float_list=tf.train.FloatList(value=X[i].tolist())),
            "cat": tf.train.Feature(bytes_list=tf.train.BytesList(value=[CAT[i].encode()]))}))
        out.append(example.SerializeToString())
    return tf.constant(out)


@pytest.mark.parametrize("name, task, build", CASES, ids=[c[0] for c in CASES])
def test_conformance(tmp_path, name, task, build):
    est = build(str(tmp_path / "model"), None, None)
    est.train(input_fn(task, True), steps=40)
    assert est.get_variable_value("global_step") == 40

    metrics = est.evaluate(input_fn(task, False))
    assert EXPECTED_METRICS[task] <= set(metrics), sorted(metrics)
    assert np.isfinite(metrics["loss"])

    predictions = list(est.predict(input_fn(task, False)))
    assert len(predictions) == N

    spec = fc.make_parse_example_spec(SPARSE)
    receiver = trainer.export.build_parsing_serving_input_receiver_fn(spec)
    path = est.export_saved_model(str(tmp_path / "export"), receiver).decode()
    loaded = tf.saved_model.load(path)
    rows = [0, 1, 2, 3]
    served = loaded.signatures["serving_default"](inputs=serialized(rows))[SERVING_OUTPUT[task]].numpy()
    by_predict = loaded.signatures["predict"](examples=serialized(rows))
    if task in ("binary", "multi", "multilabel"):
        expected = np.stack([p["probabilities"] for p in predictions[:4]])
        np.testing.assert_allclose(served, expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(by_predict["probabilities"].numpy(), expected, rtol=1e-5, atol=1e-6)
    else:
        expected = np.stack([p["predictions"] for p in predictions[:4]])
        np.testing.assert_allclose(served.reshape(expected.shape), expected, rtol=1e-5, atol=1e-6)

    # Reload in a new estimator: identical predictions.
    again = build(str(tmp_path / "model"), None, None)
    first = next(iter(again.predict(input_fn(task, False))))
    for key, value in predictions[0].items():
        np.testing.assert_array_equal(first[key], value)
    # Resume: a new estimator on the same model_dir continues from the checkpoint's step.
    again.train(input_fn(task, True), steps=5)
    assert again.get_variable_value("global_step") == 45

    if name in NO_WARM_START:
        return
    # Warm start a fresh estimator (trained with an ~zero learning rate) from this one.
    warm = build(str(tmp_path / "warm"), TINY, str(tmp_path / "model"))
    warm.train(input_fn(task, True), steps=1)
    for var in est.get_variable_names():
        if var == "global_step" or "/Adagrad" in var or "/Ftrl" in var or "/Adam" in var \
                or "beta" in var.split("/")[-1] or "moving" in var:
            continue
        np.testing.assert_allclose(warm.get_variable_value(var), est.get_variable_value(var),
                                   atol=1e-5, err_msg=var)


def test_variable_names_follow_tf_estimator():
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        est = trainer.DNNLinearCombinedClassifier(
            model_dir=d, linear_feature_columns=SPARSE, dnn_feature_columns=DENSE,
            dnn_hidden_units=[8, 4])
        est.train(input_fn("binary", True), steps=2)
        names = set(est.get_variable_names())
    for name in ["dnn/hiddenlayer_0/kernel", "dnn/hiddenlayer_1/bias", "dnn/logits/kernel",
                 "dnn/input_from_feature_columns/input_layer/cat_embedding/embedding_weights",
                 "linear/linear_model/x/weights", "linear/linear_model/cat/weights",
                 "linear/linear_model/bias_weights", "dnn/hiddenlayer_0/kernel/Adagrad",
                 "linear/linear_model/x/weights/Ftrl", "global_step"]:
        assert name in names, sorted(names)


def test_canned_argument_errors():
    with pytest.raises(ValueError, match=r"hidden_units=\[\]; expected a non-empty list"):
        trainer.DNNClassifier([], DENSE)
    with pytest.raises(ValueError, match=r"n_classes=1; expected an int >= 2"):
        trainer.LinearClassifier(SPARSE, n_classes=1)
    with pytest.raises(ValueError, match=r"feature_columns=\[\]"):
        trainer.LinearRegressor([])
    with pytest.raises(ValueError, match="sparse_combiner='max'"):
        trainer.LinearClassifier(SPARSE, sparse_combiner="max")
    with pytest.raises(ValueError, match="neither linear_feature_columns nor dnn_feature_columns"):
        trainer.DNNLinearCombinedClassifier()
    with pytest.raises(ValueError, match=r"dropout=1.5"):
        trainer.DNNRegressor([4], DENSE, dropout=1.5)


@pytest.mark.slow
def test_every_case_answers_through_python_m_serving(tmp_path):
    """Each case's parsing export, served together by one `python -m serving` (a model config
    file), answers tensorflow-serving-api's Predict stub as the Estimator's own predict does."""
    import pathlib

    from tests.server_process import predict_through_python_m_serving

    receiver = trainer.export.build_parsing_serving_input_receiver_fn(fc.make_parse_example_spec(SPARSE))
    rows = [0, 1, 2, 3, 4]
    expected = {}
    for name, task, build in CASES:
        est = build(str(tmp_path / "models" / name), None, None)
        est.train(input_fn(task, True), steps=3)
        est.export_saved_model(str(tmp_path / "served" / name), receiver)
        key = "probabilities" if task in ("binary", "multi", "multilabel") else "predictions"
        predicted = list(est.predict(lambda: tf.data.Dataset.from_tensor_slices(
            {"x": X[rows], "cat": CAT[rows]}).batch(len(rows))))
        expected[name] = (key, np.stack([p[key] for p in predicted]))
    answers = predict_through_python_m_serving(
        {name: tmp_path / "served" / name for name in expected},
        [(name, "predict", {"examples": serialized(rows)}, key) for name, (key, _) in expected.items()],
        cwd=pathlib.Path(__file__).resolve().parents[3])
    for got, (name, (_, want)) in zip(answers, expected.items()):
        # The same graph on the same float32 inputs as predict's, parsed from tf.Examples.
        np.testing.assert_allclose(got.reshape(want.shape), want, rtol=1e-5, atol=1e-6, err_msg=name)
