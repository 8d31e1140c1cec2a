"""Regenerates this fixture with the real tf.estimator 2.15 (not part of the test run).

Run it in a separate environment: python3.11 -m venv /tmp/tf215 && /tmp/tf215/bin/pip install
"tensorflow-cpu==2.15.*" "tensorflow-estimator==2.15.*"; then /tmp/tf215/bin/python make_fixture.py.
Writes model/ (a DNNLinearCombinedClassifier checkpoint after 5 steps), data.npz and expected.json
(predictions, metrics, the losses of 3 more steps from the checkpoint and the weights after them).
"""
import json, os, shutil, tempfile
import numpy as np, tensorflow as tf
out = os.path.dirname(os.path.abspath(__file__))
for stale in ("model", "data.npz", "expected.json"):
    path = os.path.join(out, stale)
    shutil.rmtree(path) if os.path.isdir(path) else (os.remove(path) if os.path.exists(path) else None)
rng = np.random.default_rng(0)
n = 64
x = rng.normal(size=n).astype(np.float32)
c = rng.integers(0, 4, size=n).astype(np.int64)
y = ((x + (c == 2)) > 0.5).astype(np.int64)
fc = tf.feature_column
cat = fc.categorical_column_with_identity("c", 4)
est = tf.estimator.DNNLinearCombinedClassifier(
    model_dir=out + "/model", linear_feature_columns=[cat, fc.numeric_column("x")],
    dnn_feature_columns=[fc.numeric_column("x"), fc.embedding_column(cat, 2)], dnn_hidden_units=[3],
    config=tf.estimator.RunConfig(tf_random_seed=7, keep_checkpoint_max=1, log_step_count_steps=1))
def input_fn(batch, repeat):
    def fn():
        d = tf.data.Dataset.from_tensor_slices(({"x": x, "c": c}, y))
        return (d.repeat() if repeat else d).batch(batch)
    return fn
est.train(input_fn(16, True), steps=5)
logits = [float(p["logits"][0]) for p in est.predict(input_fn(64, False))]
metrics = est.evaluate(input_fn(64, False))
# Three more steps from the saved checkpoint: their losses, then the new weights.
class Losses(tf.estimator.SessionRunHook):
    def __init__(self): self.values = []
    def before_run(self, ctx): return tf.estimator.SessionRunArgs(tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.LOSSES))
    def after_run(self, ctx, v): self.values.append(float(v.results[0]))
hook = Losses()
continue_dir = os.path.join(tempfile.mkdtemp(), "model")
shutil.copytree(out + "/model", continue_dir)
cont = tf.estimator.DNNLinearCombinedClassifier(
    model_dir=continue_dir, linear_feature_columns=[cat, fc.numeric_column("x")],
    dnn_feature_columns=[fc.numeric_column("x"), fc.embedding_column(cat, 2)], dnn_hidden_units=[3])
cont.train(input_fn(16, True), steps=3, hooks=[hook])
after = {k: tf.train.load_variable(cont.latest_checkpoint(), k).tolist() for k in
         ["dnn/hiddenlayer_0/kernel", "linear/linear_model/c/weights",
          "dnn/input_from_feature_columns/input_layer/c_embedding/embedding_weights"]}
for f in os.listdir(out + "/model"):
    if f.startswith(("events.", "graph.pbtxt")) or f.endswith(".meta") or f == "eval":
        p = os.path.join(out, "model", f); shutil.rmtree(p) if os.path.isdir(p) else os.remove(p)
np.savez(out + "/data.npz", x=x, c=c, y=y)
json.dump({"tensorflow": tf.__version__, "logits": logits, "auc": float(metrics["auc"]),
           "accuracy": float(metrics["accuracy"]), "loss": float(metrics["loss"]),
           "next_losses": hook.values, "weights_after_3_steps": after}, open(out + "/expected.json", "w"), indent=1)
print(os.listdir(out + "/model"), hook.values)
