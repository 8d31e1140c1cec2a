"""Regenerates this fixture with the real tf.estimator 2.15 (not part of the test run).

Run it in a separate environment: python3.11 -m venv /tmp/tf215 && /tmp/tf215/bin/pip install
"tensorflow-cpu==2.15.*" "tensorflow-estimator==2.15.*"; then /tmp/tf215/bin/python make_fixture.py.
For each case (a canned estimator with its *default* optimizer, or one given by name only),
writes <case>/ (the checkpoint after 5 steps), and in expected.json the LOSSES collection of 3
more steps from it and every trainable weight after them: what the default learning rates do.
"""
import json, os, shutil, tempfile
import numpy as np, tensorflow as tf
out = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(0)
n = 64
x = rng.normal(size=n).astype(np.float32)
c = rng.integers(0, 4, size=n).astype(np.int64)
y = ((x + (c == 2)) > 0.5).astype(np.int64)
fc = tf.feature_column
cat = fc.categorical_column_with_identity("c", 4)
DNN = dict(hidden_units=[3], feature_columns=[fc.numeric_column("x"), fc.embedding_column(cat, 2)])
LINEAR = dict(feature_columns=[cat, fc.numeric_column("x")])
CASES = {
    "dnn_classifier": (tf.estimator.DNNClassifier, DNN),
    "dnn_regressor": (tf.estimator.DNNRegressor, DNN),
    "dnn_classifier_sgd": (tf.estimator.DNNClassifier, dict(DNN, optimizer="SGD")),
    "linear_classifier": (tf.estimator.LinearClassifier, LINEAR),
    "linear_regressor": (tf.estimator.LinearRegressor, LINEAR),
    # 30 columns: 1/sqrt(30) < 0.2, so the rate tells 'Ftrl' by name (0.2) from optimizer=None.
    "linear_classifier_30_columns": (tf.estimator.LinearClassifier,
                                     dict(feature_columns=[fc.numeric_column(f"x{i}") for i in range(30)])),
}
FEATURES = {"x": x, "c": c, **{f"x{i}": x * (i + 1) / 30 for i in range(30)}}
def input_fn(batch, repeat):
    def fn():
        d = tf.data.Dataset.from_tensor_slices((FEATURES, y.astype(np.float32) if regress else y))
        return (d.repeat() if repeat else d).batch(batch)
    return fn
class Losses(tf.estimator.SessionRunHook):
    def __init__(self): self.values = []
    def before_run(self, ctx): return tf.estimator.SessionRunArgs(tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.LOSSES))
    def after_run(self, ctx, v): self.values.append([np.asarray(r).tolist() for r in v.results])
expected = {"tensorflow": tf.__version__}
for case, (cls, kwargs) in CASES.items():
    regress = "regressor" in case
    shutil.rmtree(os.path.join(out, case), ignore_errors=True)
    config = tf.estimator.RunConfig(tf_random_seed=7, keep_checkpoint_max=1)
    est = cls(model_dir=os.path.join(out, case), config=config, **kwargs)
    est.train(input_fn(16, True), steps=5)
    hook = Losses()
    continue_dir = os.path.join(tempfile.mkdtemp(), "model")
    shutil.copytree(os.path.join(out, case), continue_dir)
    cont = cls(model_dir=continue_dir, **kwargs)
    cont.train(input_fn(16, True), steps=3, hooks=[hook])
    names = [name for name, _ in tf.train.list_variables(cont.latest_checkpoint())
             if name.startswith(("dnn/", "linear/")) and "/t_" not in name and "Adagrad" not in name
             and "Ftrl" not in name and "/Adam" not in name]
    after = {k: tf.train.load_variable(cont.latest_checkpoint(), k).tolist() for k in names}
    for f in os.listdir(os.path.join(out, case)):
        if f.startswith(("events.", "graph.pbtxt")) or f.endswith(".meta") or f == "eval":
            p = os.path.join(out, case, f); shutil.rmtree(p) if os.path.isdir(p) else os.remove(p)
    expected[case] = {"next_losses": hook.values, "weights_after_3_steps": after}
    print(case, hook.values, sorted(after))
np.savez(out + "/data.npz", x=x, c=c, y=y)
json.dump(expected, open(out + "/expected.json", "w"), indent=1)
