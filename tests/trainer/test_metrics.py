import numpy as np
import pytest
from sklearn import metrics as sk

import trainer
from trainer.metrics import streaming

RNG = np.random.default_rng(1)
LABELS = RNG.integers(0, 2, size=500)
SCORES = np.clip(LABELS * 0.3 + RNG.uniform(size=500) * 0.7, 0, 1).astype(np.float32)
WEIGHTS = RNG.uniform(0.5, 2.0, size=500).astype(np.float32)


def stream(metric, *arrays, batch=64, weights=None):
    for i in range(0, len(arrays[0]), batch):
        w = None if weights is None else weights[i:i + batch]
        metric.update_state(*(a[i:i + batch] for a in arrays), weights=w)
    return float(metric.result())


def test_auc_matches_sklearn_when_streamed():
    got = stream(streaming.AUC(num_thresholds=2000), LABELS, SCORES)
    assert got == pytest.approx(sk.roc_auc_score(LABELS, SCORES), abs=2e-3)
    weighted = stream(streaming.AUC(num_thresholds=2000), LABELS, SCORES, weights=WEIGHTS)
    assert weighted == pytest.approx(sk.roc_auc_score(LABELS, SCORES, sample_weight=WEIGHTS), abs=2e-3)


def test_pr_auc_careful_interpolation_close_to_average_precision():
    metric = streaming.AUC(num_thresholds=2000, curve="PR", summation_method="careful_interpolation")
    assert stream(metric, LABELS, SCORES) == pytest.approx(sk.average_precision_score(LABELS, SCORES), abs=0.01)


def test_confusion_metrics_match_sklearn():
    predicted = (SCORES > 0.5).astype(np.int64)
    assert stream(streaming.Accuracy(), LABELS, predicted) == pytest.approx(sk.accuracy_score(LABELS, predicted))
    assert stream(streaming.Precision(), LABELS, predicted) == pytest.approx(sk.precision_score(LABELS, predicted))
    assert stream(streaming.Recall(), LABELS, predicted) == pytest.approx(sk.recall_score(LABELS, predicted))
    at = streaming.Precision(thresholds=[0.3, 0.5, 0.7])
    for i in range(0, 500, 64):
        at.update_state(LABELS[i:i + 64], SCORES[i:i + 64])
    expected = [sk.precision_score(LABELS, SCORES > t) for t in (0.3, 0.5, 0.7)]
    np.testing.assert_allclose(at.result().numpy(), expected, rtol=1e-5)


def test_regression_metrics_weighted():
    y = RNG.normal(size=300).astype(np.float32)
    p = (y + RNG.normal(scale=0.5, size=300)).astype(np.float32)
    w = WEIGHTS[:300]
    mse = sk.mean_squared_error(y, p, sample_weight=w)
    assert stream(streaming.MeanSquaredError(), y, p, weights=w) == pytest.approx(mse, rel=1e-5)
    assert stream(streaming.RootMeanSquaredError(), y, p, weights=w) == pytest.approx(np.sqrt(mse), rel=1e-5)
    assert stream(streaming.MeanAbsoluteError(), y, p) == pytest.approx(sk.mean_absolute_error(y, p), rel=1e-5)
    assert stream(streaming.Mean(), p, weights=w) == pytest.approx(np.average(p, weights=w), rel=1e-5)


def test_label_shape_alignment_and_reset():
    metric = streaming.Accuracy()
    metric.update_state(np.array([[1], [0]]), np.array([1, 1]))
    assert float(metric.result()) == 0.5
    metric.reset_state()
    assert float(metric.result()) == 0.0


def test_functional_returns_value_and_update_op():
    value, update = trainer.metrics.accuracy(labels=[1, 0, 1], predictions=[1, 1, 1])
    assert float(value) == 0.0  # read before the update
    assert float(update) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="graph collections"):
        trainer.metrics.mean([1.0], metrics_collections=["x"])


def test_metric_errors():
    with pytest.raises(ValueError, match="curve='XY'"):
        streaming.AUC(curve="XY")
    with pytest.raises(ValueError, match="num_thresholds=1"):
        streaming.AUC(num_thresholds=1)


def test_logit_spaced_thresholds_stay_exact_when_scores_saturate():
    labels = RNG.integers(0, 2, size=2000)
    logits = labels * 3.0 + RNG.normal(scale=4.0, size=2000) - 6.0  # most scores < 0.005
    scores = (1 / (1 + np.exp(-logits))).astype(np.float32)
    exact = sk.roc_auc_score(labels, scores)
    uniform = stream(streaming.AUC(), labels, scores)
    spaced = stream(streaming.AUC(thresholds=streaming.logit_spaced_thresholds()), labels, scores)
    by_logits = stream(streaming.AUC(from_logits=True), labels, logits.astype(np.float32))
    assert spaced == pytest.approx(exact, abs=2e-3)
    assert by_logits == pytest.approx(exact, abs=1e-3)
    assert abs(uniform - exact) > abs(spaced - exact)
    with pytest.raises(ValueError, match=r"thresholds=\[1.5\]; expected a non-empty list inside \(0, 1\)"):
        streaming.AUC(thresholds=[1.5])
