"""KMeansClustering against numpy's own k-means arithmetic on well-separated blobs.

The blobs (3 centers 10 apart, std 0.5, 60 points each) cannot overlap: a point is more
than 9 std from every other center, so the right partition is the only stable one and
every tolerance below is about float32 rounding or sampling noise, stated where used.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import trainer

TRUE_CENTERS = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]], np.float32)


def blobs(per=60, seed=0):
    rng = np.random.default_rng(seed)
    points = np.concatenate([c + 0.5 * rng.standard_normal((per, 2)) for c in TRUE_CENTERS]).astype(np.float32)
    labels = np.repeat(np.arange(3), per)
    return points, labels


def whole(points, repeat=None):
    def input_fn():
        ds = tf.data.Dataset.from_tensors({"x": points})
        return ds.repeat(repeat) if repeat != 1 else ds
    return input_fn


def batches(points, batch, seed=1):
    def input_fn():
        return (tf.data.Dataset.from_tensor_slices(points).shuffle(len(points), seed=seed)
                .repeat().batch(batch))
    return input_fn


def same_partition(a, b):
    """Two labelings describe the same clusters (up to renumbering)."""
    pairs = set(zip(a.tolist(), b.tolist()))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


def test_lloyd_converges_to_the_blob_means_and_every_query_agrees_with_numpy(tmp_path):
    points, labels = blobs()
    km = trainer.KMeansClustering(3, model_dir=str(tmp_path), initial_clusters="kmeans_plus_plus",
                                  use_mini_batch=False, seed=3)
    km.train(whole(points), steps=10)
    centers = km.cluster_centers()
    index = np.array(list(km.predict_cluster_index(whole(points, 1))))
    assert same_partition(index, labels)
    # Lloyd's fixed point for the right partition is each blob's mean; float32 means of 60
    # values of magnitude <= 11 are exact to ~1e-5.
    means = np.stack([points[index == c].mean(axis=0) for c in range(3)])
    np.testing.assert_allclose(centers, means, atol=1e-4)

    distances = np.stack(list(km.transform(whole(points, 1))))
    expected = ((points[:, None, :] - centers[None, :, :]) ** 2).sum(-1)
    # ||x||^2 - 2 x.c + ||c||^2 in float32 for values up to ~200: absolute error ~1e-4.
    np.testing.assert_allclose(distances, expected, atol=2e-3)
    np.testing.assert_array_equal(index, distances.argmin(axis=1))
    assert km.score(whole(points, 1)) == pytest.approx(expected.min(axis=1).sum(), rel=1e-4)
    metrics = km.evaluate(whole(points, 1))
    assert metrics["score"] == pytest.approx(metrics["loss"], rel=1e-6)  # one batch: the sum is its loss


def test_mini_batch_with_random_init_finds_the_blobs_and_resumes_from_its_checkpoint(tmp_path):
    points, labels = blobs()
    km = trainer.KMeansClustering(3, model_dir=str(tmp_path), initial_clusters="kmeans_plus_plus", seed=7)
    km.train(batches(points, 32), steps=100)
    first = km.cluster_centers()
    # Each center is the running mean of every point assigned to it (~1000 draws from a blob
    # of std 0.5: the mean is within ~0.05 of the blob's center; 0.2 is 4x that).
    order = np.argsort([np.argmin(((TRUE_CENTERS - c) ** 2).sum(1)) for c in first])
    np.testing.assert_allclose(first[order], TRUE_CENTERS, atol=0.2)
    km.train(batches(points, 32, seed=2), steps=20)  # restores: not re-initialized
    again = km.cluster_centers()
    assert np.abs(again - first).max() < 0.1
    assert km.get_variable_value("global_step") == 120
    assert same_partition(np.array(list(km.predict_cluster_index(whole(points, 1)))), labels)


def test_given_initial_centers_and_one_lloyd_step_match_numpy(tmp_path):
    points, _ = blobs()
    start = np.array([[1.0, 1.0], [8.0, 1.0], [1.0, 8.0]], np.float32)
    km = trainer.KMeansClustering(3, model_dir=str(tmp_path), initial_clusters=start, use_mini_batch=False)
    km.train(whole(points), steps=1)
    nearest = ((points[:, None] - start[None]) ** 2).sum(-1).argmin(1)
    expected = np.stack([points[nearest == c].mean(axis=0) for c in range(3)])
    np.testing.assert_allclose(km.cluster_centers(), expected, atol=1e-4)


def test_cosine_distance_and_a_center_function(tmp_path):
    points, _ = blobs()
    points = points + np.float32(1.0)  # no zero vector (cosine is undefined there)
    km = trainer.KMeansClustering(
        2, model_dir=str(tmp_path), distance_metric="cosine", use_mini_batch=False,
        initial_clusters=lambda inputs, k: inputs[:k])
    km.train(whole(points), steps=5)
    centers = km.cluster_centers()
    distances = np.stack(list(km.transform(whole(points, 1))))
    unit = points / np.linalg.norm(points, axis=1, keepdims=True)
    expected = 1.0 - unit @ (centers / np.linalg.norm(centers, axis=1, keepdims=True)).T
    np.testing.assert_allclose(distances, expected, atol=1e-5)  # cosines of unit vectors, float32
    assert distances.min() >= -1e-6 and distances.max() <= 2.0


def test_exported_model_serves_cluster_indices(tmp_path):
    points, _ = blobs()
    km = trainer.KMeansClustering(3, model_dir=str(tmp_path / "m"), initial_clusters="kmeans_plus_plus",
                                  use_mini_batch=False, seed=3,
                                  feature_columns=[trainer.feature_column.numeric_column("x", shape=2)])
    km.train(whole(points), steps=5)
    receiver = trainer.export.build_raw_serving_input_receiver_fn(
        {"x": tf.TensorSpec([None, 2], tf.float32)})
    path = km.export_saved_model(str(tmp_path / "export"), receiver)
    loaded = tf.saved_model.load(path)
    served = loaded.signatures["serving_default"](x=tf.constant(points))
    expected = np.array(list(km.predict_cluster_index(whole(points, 1))))
    np.testing.assert_array_equal(served["cluster_index"].numpy(), expected)


def test_bad_settings_are_named(tmp_path):
    with pytest.raises(ValueError, match="num_clusters=0"):
        trainer.KMeansClustering(0)
    with pytest.raises(ValueError, match="distance_metric='manhattan'"):
        trainer.KMeansClustering(2, distance_metric="manhattan")
    with pytest.raises(ValueError, match="initial_clusters='kmeans'"):
        trainer.KMeansClustering(2, initial_clusters="kmeans")
    with pytest.raises(ValueError, match=r"shape \(3, 2\); expected \[num_clusters=2"):
        trainer.KMeansClustering(2, initial_clusters=np.zeros((3, 2)))
    with pytest.raises(NotImplementedError, match="relative_tolerance"):
        trainer.KMeansClustering(2, relative_tolerance=1e-4)
    assert trainer.experimental.KMeans is trainer.KMeansClustering
    small = np.zeros((3, 2), np.float32)
    with pytest.raises(ValueError, match="fewer rows than num_clusters=5.*has 3 rows"):  # known when traced
        trainer.KMeansClustering(5, model_dir=str(tmp_path / "a")).train(whole(small), steps=1)
    with pytest.raises(tf.errors.InvalidArgumentError, match="fewer rows than num_clusters=5"):  # at run time
        trainer.KMeansClustering(5, model_dir=str(tmp_path / "b")).train(batches(small, 3), steps=1)
