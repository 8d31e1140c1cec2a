"""Child processes of `distributed.py` (one measurement each; prints one JSON line on stdout).

    python benchmarks/distributed_child.py single --tree TREE [--steps N] [--iris_steps N] [--evals K]
    python benchmarks/distributed_child.py mirrored [--steps N]
    python -m trainer.cluster --worker 2 -- python benchmarks/distributed_child.py multi_worker --model_dir D

``single`` imports ``trainer`` from TREE (the current checkout, or a worktree of
the commit before the redesign) and times, with default RunConfig settings (no
steps_per_loop, the standard hooks): the taxi wide & deep, the tiny iris DNN, and
K evaluations on the trained Estimator (plus, with ``--fresh_evals``, K
evaluations each on a new Estimator over the same model_dir). ``mirrored`` gives
the one physical CPU two logical devices before TensorFlow starts, then times
the Estimator and Keras ``fit`` under one MirroredStrategy. ``multi_worker``
is one task of a two-worker cluster: the Estimator and Keras ``fit`` under one
MultiWorkerMirroredStrategy, each process on its own CPU cores. Only the public
``trainer`` API that exists on both sides of the redesign is used.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

HERE = pathlib.Path(__file__).resolve().parent
WARMUP_STEPS = 100


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def _import_trainer(tree):
    """``trainer`` from ``tree`` (ahead of the editable install), the benchmark helpers from HERE."""
    sys.path.insert(0, str(HERE))
    sys.path.insert(0, str(pathlib.Path(tree).resolve()))
    import trainer
    where = pathlib.Path(trainer.__file__).resolve()
    if pathlib.Path(tree).resolve() not in where.parents:
        raise SystemExit(f"trainer imported from {where}, not from {tree}")
    return trainer


def _timer_hook(trainer):
    class CallTimer(trainer.SessionRunHook):
        """A timestamp after every run call; fetches nothing (no per-step cost of its own)."""

        def __init__(self):
            self.stamps = []

        def after_run(self, run_context, run_values):
            self.stamps.append(time.perf_counter())

        def steps_until_needed(self, global_step):
            # Any run length: a measuring device must not change what it measures (the
            # standard hooks size the runs). Ignored by trees before steps_per_loop=None.
            return None

        def steady_steps_per_sec(self, steps):
            # Calls may run several steps each: steps per call = steps / calls.
            per_call = steps / len(self.stamps)
            first = min(len(self.stamps) - 2, max(0, int(round(WARMUP_STEPS / per_call)) - 1))
            calls = len(self.stamps) - 1 - first
            return calls * per_call / (self.stamps[-1] - self.stamps[first])
    return CallTimer()


def taxi_estimator(trainer, model_dir, sizes, config):
    from taxi_wide_deep import estimator_columns
    wide, deep = estimator_columns(sizes)
    return trainer.DNNLinearCombinedClassifier(
        model_dir=model_dir, linear_feature_columns=wide, dnn_feature_columns=deep,
        dnn_hidden_units=[100, 70, 50, 25], config=config)


def time_train(trainer, est, input_fn, steps, batch_size):
    hook = _timer_hook(trainer)
    started = time.perf_counter()
    est.train(input_fn, steps=steps, hooks=[hook])
    elapsed = time.perf_counter() - started
    steady = hook.steady_steps_per_sec(steps)
    return {"examples_per_sec": steady * batch_size, "ms_per_step": 1000 / steady,
            "examples_per_sec_end_to_end": steps * batch_size / elapsed, "train_call_s": elapsed}


def time_evals(make_est, input_fn, count):
    """Seconds of each of ``count`` evaluate calls, each on ``make_est()``'s Estimator."""
    times = []
    for _ in range(count):
        est = make_est()
        started = time.perf_counter()
        est.evaluate(input_fn)
        times.append(time.perf_counter() - started)
    return times


def iris_input_fn(batch_size):
    from sklearn.datasets import load_iris
    import numpy as np
    iris = load_iris()
    features = {f"x{i}": iris.data[:, i].astype(np.float32) for i in range(4)}
    labels = iris.target.astype(np.int64)

    def fn():
        import tensorflow as tf
        ds = tf.data.Dataset.from_tensor_slices((features, labels))
        return ds.shuffle(150, seed=1, reshuffle_each_iteration=True).repeat().batch(batch_size)
    return fn


def run_single(args):
    trainer = _import_trainer(args.tree)
    import tensorflow as tf
    from taxi_data import input_fn, prepare
    tf.keras.utils.set_random_seed(1)
    train, evaluation, sizes = prepare()
    result = {"tree": str(args.tree), "trainer_file": trainer.__file__}
    config = trainer.RunConfig(tf_random_seed=1)  # defaults: the standard hooks size the runs
    with tempfile.TemporaryDirectory() as root:
        model_dir = os.path.join(root, "taxi")
        est = taxi_estimator(trainer, model_dir, sizes, config)
        log(f"[{args.label}] taxi wide & deep: {args.steps} steps ...")
        result["taxi"] = time_train(trainer, est, input_fn(train, args.batch_size, True),
                                    args.steps, args.batch_size)
        log(f"[{args.label}] taxi: {result['taxi']}")
        if args.evals:
            eval_fn = input_fn(evaluation, 1024, False)
            result["eval_same_estimator_s"] = time_evals(lambda: est, eval_fn, args.evals)
            if args.fresh_evals:
                result["eval_new_estimator_s"] = time_evals(
                    lambda: taxi_estimator(trainer, model_dir, sizes, config), eval_fn, args.evals)
            log(f"[{args.label}] evals: same {result['eval_same_estimator_s']} "
                f"new {result.get('eval_new_estimator_s')}")
        if args.iris_steps:
            fc = trainer.feature_column
            iris = trainer.DNNClassifier(
                hidden_units=[10, 20, 10], feature_columns=[fc.numeric_column(f"x{i}") for i in range(4)],
                n_classes=3, model_dir=os.path.join(root, "iris"), config=config)
            log(f"[{args.label}] iris DNN: {args.iris_steps} steps ...")
            result["iris"] = time_train(trainer, iris, iris_input_fn(32), args.iris_steps, 32)
            log(f"[{args.label}] iris: {result['iris']}")
    print(json.dumps(result), flush=True)


def run_mirrored(args):
    import tensorflow as tf
    # Before anything initializes the runtime: the one CPU becomes two logical devices.
    gpus = [d.name for d in tf.config.list_physical_devices("GPU")]  # reported, not used
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    trainer = _import_trainer(HERE.parent)
    from taxi_data import input_fn, prepare
    import taxi_wide_deep
    strategy = tf.distribute.MirroredStrategy(devices)  # one per process (collective keys)
    tf.keras.utils.set_random_seed(1)
    train, evaluation, sizes = prepare()
    result = {"devices": devices, "replicas": strategy.num_replicas_in_sync,
              "global_batch": args.batch_size, "gpus": gpus}
    config = trainer.RunConfig(tf_random_seed=1, train_distribute=strategy)
    with tempfile.TemporaryDirectory() as model_dir:
        est = taxi_estimator(trainer, model_dir, sizes, config)
        log(f"[mirrored] Estimator: {args.steps} steps ...")
        result["estimator"] = time_train(trainer, est, input_fn(train, args.batch_size, True),
                                         args.steps, args.batch_size)
        log(f"[mirrored] Estimator: {result['estimator']}")
    log(f"[mirrored] Keras fit: {args.steps} steps ...")
    with strategy.scope():  # the benchmark's Keras peer, built and fitted under the same strategy
        keras = taxi_wide_deep.run_keras(train, evaluation, sizes, args.steps, args.batch_size)
    result["keras"] = {"examples_per_sec": keras["steady"],
                       "examples_per_sec_end_to_end": keras["end_to_end"]}
    log(f"[mirrored] Keras: {result['keras']}")
    print(json.dumps(result), flush=True)


def run_multi_worker(args):
    """One task of a two-worker cluster (TF_CONFIG from trainer.cluster); worker 0 prints the JSON."""
    import tensorflow as tf
    strategy = tf.distribute.MultiWorkerMirroredStrategy()  # first: before the runtime starts
    trainer = _import_trainer(HERE.parent)
    from taxi_data import input_fn, prepare
    import taxi_wide_deep
    tf.keras.utils.set_random_seed(1)
    train, evaluation, sizes = prepare()
    chief = strategy.cluster_resolver.task_id == 0
    result = {"workers": strategy.num_replicas_in_sync, "global_batch": args.batch_size}
    config = trainer.RunConfig(tf_random_seed=1, train_distribute=strategy)
    est = taxi_estimator(trainer, os.path.join(args.model_dir, "estimator"), sizes, config)
    log(f"[multi_worker] Estimator: {args.steps} steps ...")
    result["estimator"] = time_train(trainer, est, input_fn(train, args.batch_size, True),
                                     args.steps, args.batch_size)
    log(f"[multi_worker] Keras fit: {args.steps} steps ...")
    with strategy.scope():  # the same Keras peer as `mirrored`, under this strategy
        keras = taxi_wide_deep.run_keras(train, evaluation, sizes, args.steps, args.batch_size)
    result["keras"] = {"examples_per_sec": keras["steady"],
                       "examples_per_sec_end_to_end": keras["end_to_end"]}
    if chief:
        print(json.dumps(result), flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["single", "mirrored", "multi_worker"])
    parser.add_argument("--model_dir", help="multi_worker: the shared model_dir")
    parser.add_argument("--tree", default=str(HERE.parent))
    parser.add_argument("--label", default="single")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch_size", type=int, default=256)
    parser.add_argument("--iris_steps", type=int, default=0)
    parser.add_argument("--evals", type=int, default=0)
    parser.add_argument("--fresh_evals", action="store_true")
    args = parser.parse_args(argv)
    {"single": run_single, "mirrored": run_mirrored, "multi_worker": run_multi_worker}[args.mode](args)


if __name__ == "__main__":
    main()
