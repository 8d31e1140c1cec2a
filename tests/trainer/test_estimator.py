import numpy as np
import pytest
import tensorflow as tf

import trainer
from tests.trainer import models


def make(tmp_path, model_fn=models.linear_model_fn, **config):
    return trainer.Estimator(model_fn, model_dir=str(tmp_path / "model"),
                             config=trainer.RunConfig(**config), params={})


def test_resume_continues_global_step(tmp_path):
    est = make(tmp_path)
    est.train(models.train_input_fn, steps=100)
    assert est.get_variable_value("global_step") == 100
    est.train(models.train_input_fn, steps=100)
    assert est.get_variable_value("global_step") == 200
    # A new Estimator in the same model_dir resumes too.
    again = make(tmp_path)
    again.train(models.train_input_fn, max_steps=250)
    assert again.get_variable_value("global_step") == 250
    # max_steps already reached: nothing happens.
    again.train(models.train_input_fn, max_steps=250)
    assert again.latest_checkpoint().endswith("model.ckpt-250")


def test_learns_and_checkpoint_names_are_readable(tmp_path):
    est = make(tmp_path)
    est.train(models.train_input_fn, steps=300)
    names = est.get_variable_names()
    assert names == ["global_step", "linear/bias", "linear/weights"]
    listed = dict(tf.train.list_variables(est.model_dir))
    assert listed["linear/weights"] == [3, 1]
    np.testing.assert_allclose(est.get_variable_value("linear/weights")[:, 0], models.TRUE_W, atol=0.05)
    np.testing.assert_allclose(est.get_variable_value("linear/bias"), [0.3], atol=0.05)


def test_predictions_identical_after_reload_in_new_estimator(tmp_path):
    est = make(tmp_path, models.classifier_model_fn)
    est.train(models.classifier_train_input_fn, steps=50)
    first = np.array([p["prob"] for p in est.predict(models.predict_input_fn)])
    fresh = make(tmp_path, models.classifier_model_fn)
    second = np.array([p["prob"] for p in fresh.predict(models.predict_input_fn)])
    assert first.shape == (256,)
    np.testing.assert_array_equal(first, second)
    # Keras auto-named layers keep their names across traces and Estimators.
    assert "dense/kernel" in fresh.get_variable_names()
    assert "dense_1/kernel" in fresh.get_variable_names()


def test_predict_keys_and_batches(tmp_path):
    est = make(tmp_path, models.classifier_model_fn)
    est.train(models.classifier_train_input_fn, steps=5)
    batches = list(est.predict(models.predict_input_fn, predict_keys="prob",
                               yield_single_examples=False))
    assert [sorted(b) for b in batches] == [["prob"]] * 6
    assert sum(len(b["prob"]) for b in batches) == 256
    with pytest.raises(ValueError, match=r"\['nope'\] are not among the predictions"):
        list(est.predict(models.predict_input_fn, predict_keys=["nope"]))


def test_evaluate_aggregates_over_all_batches(tmp_path):
    est = make(tmp_path)
    est.train(models.train_input_fn, steps=20)
    result = est.evaluate(lambda: models.eval_input_fn(batch_size=37))
    preds = np.array([p["y"] for p in est.predict(models.predict_input_fn)])
    full_mse = np.mean((preds - models.Y) ** 2)
    assert result["global_step"] == 20
    np.testing.assert_allclose(result["mse"], full_mse, rtol=1e-4)
    # loss is the mean of per-batch losses, as in tf.estimator.
    batch_losses = [np.mean((preds[i:i + 37] - models.Y[i:i + 37]) ** 2) for i in range(0, 256, 37)]
    np.testing.assert_allclose(result["loss"], np.mean(batch_losses), rtol=1e-4)
    limited = est.evaluate(lambda: models.eval_input_fn(batch_size=37), steps=2)
    np.testing.assert_allclose(limited["mse"], np.mean((preds[:74] - models.Y[:74]) ** 2), rtol=1e-4)


def test_classifier_metrics_and_eval_dir(tmp_path):
    est = make(tmp_path, models.classifier_model_fn)
    est.train(models.classifier_train_input_fn, steps=200)
    result = est.evaluate(models.classifier_eval_input_fn, name="holdout")
    assert result["auc"] > 0.95 and result["accuracy"] > 0.85
    events = trainer.hooks.read_eval_metrics(est.eval_dir("holdout"))
    assert events[200]["auc"] == pytest.approx(float(result["auc"]), rel=1e-5)


def test_steps_per_loop_matches_single_steps(tmp_path):
    a = make(tmp_path / "a", steps_per_loop=1)
    b = make(tmp_path / "b", steps_per_loop=16)
    fn = lambda: tf.data.Dataset.from_tensor_slices(({"x": models.X}, models.Y)).batch(32).repeat()  # noqa: E731
    a.train(fn, steps=50)
    b.train(fn, steps=50)
    assert b.get_variable_value("global_step") == 50
    np.testing.assert_allclose(a.get_variable_value("linear/weights"),
                               b.get_variable_value("linear/weights"), rtol=1e-5)


def test_finite_input_stops_at_end_of_data(tmp_path):
    est = make(tmp_path, steps_per_loop=3)
    est.train(lambda: models.eval_input_fn(batch_size=32))  # 8 batches, one epoch
    assert est.get_variable_value("global_step") == 8


def test_run_eagerly_and_jit_compile_train_the_same(tmp_path):
    eager = make(tmp_path / "e", run_eagerly=True)
    xla = make(tmp_path / "x", jit_compile=True)
    eager.train(models.train_input_fn, steps=10)
    xla.train(models.train_input_fn, steps=10)
    np.testing.assert_allclose(eager.get_variable_value("linear/weights"),
                               xla.get_variable_value("linear/weights"), rtol=1e-4)


def test_run_eagerly_calls_model_fn_eagerly(tmp_path):
    seen = []

    def model_fn(features, labels, mode):
        seen.append(tf.executing_eagerly())
        return models.linear_model_fn(features, labels, mode, {})

    est = make(tmp_path, model_fn, run_eagerly=True)
    est.train(models.train_input_fn, steps=3)
    # Tracing (no step runs) creates the variables; then every step is a plain Python call.
    assert seen[-3:] == [True, True, True]
    assert not any(seen[:-3])


def test_model_fn_args_subset_and_params(tmp_path):
    calls = {}

    def model_fn(features, labels, config):
        calls["config"] = config
        return models.linear_model_fn(features, labels, trainer.ModeKeys.TRAIN, {})

    est = make(tmp_path, model_fn)
    est.train(models.train_input_fn, steps=2)
    assert calls["config"].model_dir == est.model_dir


def test_warm_start_copies_selected_variables(tmp_path):
    source = make(tmp_path / "src")
    source.train(models.train_input_fn, steps=200)
    settings = trainer.WarmStartSettings(source.model_dir, vars_to_warm_start="linear/weights")
    target = trainer.Estimator(models.linear_model_fn, model_dir=str(tmp_path / "dst"),
                               params={"learning_rate": 1e-9}, warm_start_from=settings)
    target.train(models.train_input_fn, steps=1)
    np.testing.assert_allclose(target.get_variable_value("linear/weights"),
                               source.get_variable_value("linear/weights"), atol=1e-6)
    assert abs(float(target.get_variable_value("linear/bias")[0])) < 1e-6  # not warm-started


def test_warm_start_renamed_variable(tmp_path):
    source = make(tmp_path / "src")
    source.train(models.train_input_fn, steps=50)

    def renamed(features, labels, mode, params):
        x = tf.cast(features["x"], tf.float32)
        w = tf.Variable(lambda: tf.zeros([3, 1]), name="new/w")
        y = tf.squeeze(tf.matmul(x, w), -1)
        loss = tf.reduce_mean(tf.square(y - labels))
        op = trainer.optimizers.SGD(1e-9).minimize(loss, trainer.get_global_step())
        return trainer.EstimatorSpec(mode, loss=loss, train_op=op)

    settings = trainer.WarmStartSettings(source.latest_checkpoint(), vars_to_warm_start=["new/.*"],
                                         var_name_to_prev_var_name={"new/w": "linear/weights"})
    target = trainer.Estimator(renamed, model_dir=str(tmp_path / "dst"), warm_start_from=settings)
    target.train(models.train_input_fn, steps=1)
    np.testing.assert_allclose(target.get_variable_value("new/w"),
                               source.get_variable_value("linear/weights"), atol=1e-6)
    bad = trainer.WarmStartSettings(source.model_dir, vars_to_warm_start=["new/.*"])
    with pytest.raises(ValueError, match=r"'new/w' \(looked up as 'new/w'\) is not in checkpoint"):
        trainer.Estimator(renamed, model_dir=str(tmp_path / "dst2"), warm_start_from=bad).train(
            models.train_input_fn, steps=1)


def test_tensorboard_event_files_are_written(tmp_path):
    est = make(tmp_path, save_summary_steps=10, log_step_count_steps=10)
    est.train(models.train_input_fn, steps=30)
    scalars = trainer.hooks.read_eval_metrics(est.model_dir)
    # The loss of steps 0, 10, 20 is recorded under the step count after them, as tf.estimator did.
    assert [s for s, v in scalars.items() if "loss" in v] == [1, 11, 21]
    assert [s for s, v in scalars.items() if "global_step/sec" in v] == [10, 20, 30]


def test_keep_checkpoint_max(tmp_path):
    est = make(tmp_path, save_checkpoints_steps=10, keep_checkpoint_max=2)
    est.train(models.train_input_fn, steps=50)
    state = tf.train.get_checkpoint_state(est.model_dir)
    assert [p.rsplit("-", 1)[1] for p in state.all_model_checkpoint_paths] == ["40", "50"]
    assert len(tf.io.gfile.glob(est.model_dir + "/model.ckpt-*.index")) == 2


# -- errors ---------------------------------------------------------------------------------

def test_bad_model_fn_return(tmp_path):
    est = make(tmp_path, lambda features, labels, mode: {"loss": 1.0})
    with pytest.raises(TypeError, match=r"model_fn must return a trainer.EstimatorSpec; in mode='train' it returned dict"):
        est.train(models.train_input_fn, steps=1)


def test_bad_input_fn_structure(tmp_path):
    est = make(tmp_path)
    with pytest.raises(TypeError, match=r"input_fn returned str; expected a tf.data.Dataset"):
        est.train(lambda: "data.csv", steps=1)
    three = lambda: tf.data.Dataset.from_tensors(({"x": models.X}, models.Y, models.Y))  # noqa: E731
    with pytest.raises(ValueError, match=r"yields tuples of 3 items; expected \(features, labels\)"):
        est.train(three, steps=1)
    with pytest.raises(ValueError, match=r"feature keys must be strings; got 1"):
        est.train(lambda: tf.data.Dataset.from_tensors(({1: models.X}, models.Y)), steps=1)


def test_features_only_input_gives_the_model_fn_labels_none_in_train(tmp_path):
    # tf.estimator passed labels=None; a head that needs labels names the fix.
    est = trainer.LinearRegressor([trainer.feature_column.numeric_column("x", shape=3)],
                                  model_dir=str(tmp_path / "canned"))
    with pytest.raises(ValueError, match=r"got labels=None; the input_fn must return \(features, labels\)"):
        est.train(models.predict_input_fn, steps=1)
    seen = []

    def unsupervised(features, labels, mode):
        seen.append(labels)
        w = tf.Variable(lambda: tf.zeros([1]), name="w")
        loss = tf.reduce_mean(tf.square(features["x"] - w))
        return trainer.EstimatorSpec(mode, loss=loss, train_op=trainer.optimizers.SGD(0.1).minimize(
            loss, global_step=trainer.get_global_step()))

    trainer.Estimator(unsupervised, model_dir=str(tmp_path / "u")).train(models.predict_input_fn, steps=2)
    assert seen and all(labels is None for labels in seen)


def test_model_fn_signature_errors():
    with pytest.raises(ValueError, match=r"it must take 'features'"):
        trainer.Estimator(lambda x, labels: None)
    with pytest.raises(ValueError, match=r"unexpected arguments \['extra'\]"):
        trainer.Estimator(lambda features, extra: None)
    with pytest.raises(TypeError, match=r"expected a trainer.RunConfig"):
        trainer.Estimator(models.linear_model_fn, config={"model_dir": "x"})


def test_train_argument_errors(tmp_path):
    est = make(tmp_path)
    with pytest.raises(ValueError, match=r"got steps=1 and max_steps=2; give at most one"):
        est.train(models.train_input_fn, steps=1, max_steps=2)
    with pytest.raises(ValueError, match=r"got steps=0; expected an int > 0"):
        est.train(models.train_input_fn, steps=0)


def test_evaluate_without_checkpoint(tmp_path):
    est = make(tmp_path)
    with pytest.raises(ValueError, match=r"could not find a trained model in model_dir"):
        est.evaluate(models.eval_input_fn)


def test_model_fn_without_labels_rejects_labels(tmp_path):
    def model_fn(features, mode):
        return models.linear_model_fn(features, None, mode, {})

    with pytest.raises(ValueError, match=r"does not take 'labels', but the input_fn returned labels"):
        make(tmp_path, model_fn).train(models.train_input_fn, steps=1)


def test_variable_created_from_traced_tensor_gets_clear_error(tmp_path):
    def model_fn(features, labels, mode):
        w = tf.Variable(tf.reduce_mean(features["x"]) * tf.ones([1]), name="w")
        loss = tf.reduce_mean(w)
        return trainer.EstimatorSpec(mode, loss=loss,
                                     train_op=trainer.optimizers.SGD(0.1).minimize(loss))

    with pytest.raises(ValueError, match=r"Variable 'w' was given an initial value computed inside"):
        make(tmp_path, model_fn).train(models.train_input_fn, steps=1)


def test_train_op_without_global_step_still_advances(tmp_path):
    def model_fn(features, labels, mode):
        spec = models.linear_model_fn(features, labels, trainer.ModeKeys.EVAL, {})
        op = trainer.optimizers.SGD(0.1).minimize(spec.loss)  # no global_step
        return trainer.EstimatorSpec(mode, loss=spec.loss, train_op=op)

    est = make(tmp_path, model_fn)
    est.train(models.train_input_fn, steps=7)
    assert est.get_variable_value("global_step") == 7


def test_warm_start_remaps_vocabulary_rows(tmp_path):
    old_vocab = tmp_path / "old.txt"
    new_vocab = tmp_path / "new.txt"
    old_vocab.write_text("a\nb\nc\n")
    new_vocab.write_text("c\nz\na\n")

    def model_fn(features, labels, mode, params):
        emb = tf.Variable(lambda: tf.fill([params["rows"], 2], params["fill"]), name="emb")
        loss = tf.reduce_mean(emb) * 0.0 + tf.reduce_mean(tf.cast(features["x"], tf.float32)) * 0.0
        op = trainer.optimizers.SGD(1e-9).minimize(loss + tf.reduce_sum(emb) * 0.0, trainer.get_global_step())
        return trainer.EstimatorSpec(mode, loss=loss, train_op=op)

    old = trainer.Estimator(model_fn, model_dir=str(tmp_path / "old"), params={"rows": 3, "fill": 0.0})
    old.train(models.train_input_fn, steps=1)
    # Give the old rows recognisable values: row i = [i, i].
    from trainer import checkpoints
    store = trainer.variables.VariableStore()
    values = {"emb": store.get_or_create("emb", lambda: tf.constant([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]])),
              "global_step": store.get_or_create("global_step", lambda: tf.constant(1, tf.int64))}
    checkpoints.save(values, old.model_dir, 2)
    info = trainer.VocabInfo(new_vocab=str(new_vocab), new_vocab_size=3, num_oov_buckets=1,
                             old_vocab=str(old_vocab))
    settings = trainer.WarmStartSettings(old.model_dir, vars_to_warm_start=["emb"],
                                         var_name_to_vocab_info={"emb": info})
    new = trainer.Estimator(model_fn, model_dir=str(tmp_path / "new"), params={"rows": 4, "fill": -1.0},
                            warm_start_from=settings)
    new.train(models.train_input_fn, steps=1)
    np.testing.assert_allclose(new.get_variable_value("emb"),
                               [[2, 2], [-1, -1], [0, 0], [-1, -1]], atol=1e-6)


def test_slots_and_internal_variables_are_keyed_once(tmp_path):
    est = make(tmp_path, models.classifier_model_fn)
    est.train(models.classifier_train_input_fn, steps=2)
    assert est.get_variable_names() == [
        "dense/bias", "dense/bias/Adagrad", "dense/kernel", "dense/kernel/Adagrad",
        "dense_1/bias", "dense_1/bias/Adagrad", "dense_1/kernel", "dense_1/kernel/Adagrad",
        "global_step"]


def test_tf1_metrics_in_user_model_fn_are_local_state(tmp_path):
    """tf.compat.v1.metrics keep their state in 'local_variables': never checkpointed."""

    def model_fn(features, labels, mode):
        spec = models.linear_model_fn(features, labels, mode, {})
        if mode != trainer.ModeKeys.EVAL:
            return spec
        mae = tf.compat.v1.metrics.mean_absolute_error(labels, tf.identity(labels))
        return spec._replace(eval_metric_ops={"zero_mae": mae})

    est = make(tmp_path, model_fn)
    est.train(models.train_input_fn, steps=5)
    result = est.evaluate(models.eval_input_fn)
    assert result["zero_mae"] == pytest.approx(0.0)
    assert not any("zero_mae" in n or "mean_absolute_error" in n for n in est.get_variable_names())


def test_evaluate_returns_numpy_scalars_as_tf_estimator_did(tmp_path):
    est = make(tmp_path)
    est.train(models.train_input_fn, steps=2)
    metrics = est.evaluate(models.eval_input_fn)
    assert isinstance(metrics["loss"], np.float32) and not isinstance(metrics["loss"], np.ndarray)
    assert isinstance(metrics["global_step"], int) and metrics["global_step"] == 2


def test_disable_eager_execution_gets_a_message_that_says_what_to_do():
    import subprocess
    import sys

    script = ("import tensorflow as tf, trainer\n"
              "tf.compat.v1.disable_eager_execution()\n"
              "try:\n"
              "    trainer.LinearRegressor([trainer.feature_column.numeric_column('x')])\n"
              "except RuntimeError as e:\n"
              "    print('message:', e)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert "message: LinearRegressor needs TensorFlow 2's eager mode" in done.stdout, done.stderr[-2000:]
    assert "How to fix: remove that call" in done.stdout


def test_add_metrics_reports_the_extra_metrics_of_a_canned_estimator(tmp_path):
    x = trainer.feature_column.numeric_column("x", shape=3)
    base = trainer.LinearClassifier([x], model_dir=str(tmp_path))
    fn = lambda: tf.data.Dataset.from_tensor_slices(({"x": models.X}, models.Y_CLASS)).repeat().batch(32)  # noqa: E731
    base.train(fn, steps=20)

    def metric_fn(labels, predictions, features):
        del features
        return {"my_accuracy": trainer.metrics.accuracy(labels, predictions["class_ids"]),
                "accuracy": trainer.metrics.mean(tf.zeros_like(predictions["logistic"]))}  # replaces

    extended = trainer.add_metrics(base, metric_fn)
    assert extended.model_dir == base.model_dir
    eval_fn = lambda: tf.data.Dataset.from_tensor_slices(({"x": models.X}, models.Y_CLASS)).batch(64)  # noqa: E731
    plain, extra = base.evaluate(eval_fn), extended.evaluate(eval_fn)
    assert extra["my_accuracy"] == pytest.approx(plain["accuracy"], abs=1e-6)
    assert extra["accuracy"] == 0.0 and extra["auc"] == pytest.approx(plain["auc"], abs=1e-6)
    with pytest.raises(ValueError, match=r"it must take 'predictions'"):
        trainer.add_metrics(base, lambda labels, logits: {})
