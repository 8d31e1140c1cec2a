"""TF_CONFIG parsing and its errors in RunConfig, the fields that raise
NotImplementedError, and the Kubeflow TFJob manifest of docs/distributed.md."""

import json
import pathlib

import pytest
import yaml

import trainer

TFJOB = pathlib.Path(__file__).resolve().parents[2] / "docs" / "examples" / "tfjob.yaml"
W2 = {"worker": ["127.0.0.1:2001", "127.0.0.1:2002"]}


def config_from(monkeypatch, tf_config):
    monkeypatch.setenv("TF_CONFIG", tf_config if isinstance(tf_config, str) else json.dumps(tf_config))
    return trainer.RunConfig()


def task(kind, index=0):
    return {"type": kind, "index": index}


# -- valid configurations -------------------------------------------------------
def test_workers_without_chief_make_worker_0_the_chief(monkeypatch):
    configs = [config_from(monkeypatch, {"cluster": W2, "task": task("worker", i)}) for i in (0, 1)]
    assert [c.is_chief for c in configs] == [True, False]
    assert [c.num_worker_replicas for c in configs] == [2, 2]
    assert [c.global_id_in_cluster for c in configs] == [0, 1]
    assert configs[1].master == "grpc://127.0.0.1:2002"


def test_chief_and_legacy_master(monkeypatch):
    cluster = {"chief": ["h:1"], "worker": ["h:2"], "ps": ["h:3"]}
    chief = config_from(monkeypatch, {"cluster": cluster, "task": task("chief")})
    worker = config_from(monkeypatch, {"cluster": cluster, "task": task("worker")})
    ps = config_from(monkeypatch, {"cluster": cluster, "task": task("ps")})
    assert (chief.is_chief, worker.is_chief, ps.is_chief) == (True, False, False)
    assert (worker.global_id_in_cluster, ps.global_id_in_cluster) == (1, 2)
    assert chief.num_worker_replicas == 2 and chief.num_ps_replicas == 1
    master = config_from(monkeypatch, {"cluster": {"master": ["h:1"], "worker": ["h:2"]},
                                       "task": task("master")})
    assert master.is_chief and master.num_worker_replicas == 2


def test_evaluator_is_outside_the_training_cluster(monkeypatch):
    config = config_from(monkeypatch, {"cluster": W2, "task": task("evaluator"), "environment": "cloud"})
    assert (config.task_type, config.task_id, config.is_chief) == ("evaluator", 0, False)
    assert config.num_worker_replicas == 0 and config.num_ps_replicas == 0
    assert config.cluster_spec.as_dict() == {} and config.master == ""
    assert config.global_id_in_cluster is None


def test_local_mode_and_lenient_forms(monkeypatch):
    assert config_from(monkeypatch, "  ").is_chief
    local = config_from(monkeypatch, {"task": task("worker", 0)})
    assert local.is_chief and local.num_worker_replicas == 1
    assert config_from(monkeypatch, {"cluster": W2, "task": {"type": "worker", "index": "1"}}).task_id == 1
    explicit = trainer.RunConfig(tf_config={"cluster": W2, "task": task("worker", 1)})
    assert explicit.task_id == 1 and not explicit.is_chief


# -- errors ----------------------------------------------------------------------
ERRORS = [
    ("{not json", r"TF_CONFIG is not valid JSON: Expecting property name .* at line 1 column 2 "
                  r"\(char 1\), here: '\{' >>> 'not json'"),
    ('{"cluster": {"worker": ["h:1"]}, "task": {"type": "worker" "index": 0}}',
     r"not valid JSON: Expecting ',' delimiter at line 1 column 60 \(char 59\), "
                  r"here: ': {\"type\": \"worker\" ' >>> '\"index\": 0}}'"),
    ("[1, 2]", r"TF_CONFIG must be a JSON object; got \[1, 2\]"),
    ({"cluster": ["h:1"]}, r"'cluster' must be an object mapping task types"),
    ({"cluster": W2}, r"has a 'cluster' but no 'task'; add \"task\""),
    ({"cluster": W2, "task": "worker"}, r"'task' must be an object such as"),
    ({"cluster": W2, "task": {"index": 0}}, r"'task' has no 'type'.*one of chief, worker, ps, evaluator, master"),
    ({"cluster": W2, "task": task("trainer")},
     r"task type 'trainer' is unknown; use one of chief, worker, ps, evaluator, master"),
    ({"task": task("boss")}, r"task type 'boss' is unknown"),
    ({"cluster": W2, "task": {"type": "worker"}}, r"'task' has no 'index'"),
    ({"cluster": W2, "task": task("worker", -1)}, r"task index must be an int >= 0"),
    ({"cluster": W2, "task": task("worker", "x")}, r"task index must be an int >= 0"),
    ({"cluster": W2, "task": task("worker", 2)},
     r"task worker:2 is not in the cluster: cluster\['worker'\] has 2 address\(es\), indices 0\.\.1"),
    ({"cluster": W2, "task": task("ps", 0)},
     r"task ps:0 is not in the cluster: the cluster has no 'ps' entry \(it has \['worker'\]\)"),
    ({"cluster": {"ps": ["h:1"]}, "task": task("ps")},
     r"has no 'chief' and no 'worker' \(it has \['ps'\]\), so no task can be the chief.*worker 0 is the chief"),
    ({"cluster": {"worker": [], "ps": ["h:1"]}, "task": task("ps")}, r"no task can be the chief"),
    ({"cluster": {**W2, "evaluator": ["h:9"]}, "task": task("evaluator")},
     r"lists 'evaluator' in 'cluster'.*remove it from 'cluster'"),
    ({"cluster": {**W2, "trainer": ["h:9"]}, "task": task("worker")},
     r"'cluster' has an unknown task type 'trainer'"),
    ({"cluster": {"worker": "h:1"}, "task": task("worker")}, r"cluster\['worker'\] must be a list"),
    ({"cluster": {"worker": ["h:1", "h:1"]}, "task": task("worker")},
     r"cluster\['worker'\]\[1\] = 'h:1' is also cluster\['worker'\]\[0\]; each task needs its own address"),
    ({"cluster": {"chief": ["h:1"], "worker": ["h:1"]}, "task": task("chief")},
     r"cluster\['worker'\]\[0\] = 'h:1' is also cluster\['chief'\]\[0\]"),
    ({"cluster": {"worker": ["h"]}, "task": task("worker")},
     r"cluster\['worker'\]\[0\] = 'h' has no valid port; write it as 'host:port'"),
    ({"cluster": {"worker": ["h:"]}, "task": task("worker")}, r"has no valid port"),
    ({"cluster": {"worker": ["h:99999"]}, "task": task("worker")}, r"has no valid port"),
    ({"cluster": {"worker": [2222]}, "task": task("worker")}, r"must be a 'host:port' string"),
    ({"cluster": {"chief": ["h:1", "h:2"]}, "task": task("chief")},
     r"cluster\['chief'\] must have exactly one address; got 2"),
    ({"cluster": {"chief": ["h:1"], "master": ["h:2"]}, "task": task("chief")},
     r"has both 'chief' and 'master'"),
    ({"cluster": W2, "task": task("evaluator", 1)}, r"only one evaluator task \(index 0\)"),
    ({"task": task("worker", 1)}, r"no 'cluster'.*must be worker 0"),
    ({"task": task("evaluator")}, r"no 'cluster'.*must be worker 0"),
]


@pytest.mark.parametrize("tf_config, message", ERRORS, ids=[str(i) for i in range(len(ERRORS))])
def test_tf_config_errors_are_one_line(monkeypatch, tf_config, message):
    with pytest.raises(ValueError, match=message) as info:
        config_from(monkeypatch, tf_config)
    text = str(info.value)
    assert "\n" not in text and text.startswith("TF_CONFIG"), text
    assert info.value.__cause__ is None and (info.value.__context__ is None
                                             or info.value.__suppress_context__)


def test_explicit_tf_config_is_checked_too():
    with pytest.raises(ValueError, match="is not in the cluster"):
        trainer.RunConfig(tf_config={"cluster": W2, "task": task("worker", 5)})


# -- fields that nothing reads yet -------------------------------------------------
NOT_IMPLEMENTED = {
    "session_config": object(),
    "keep_checkpoint_every_n_hours": 1,
    "device_fn": lambda op: "/cpu:0",
    "protocol": "grpc+verbs",
    "experimental_distribute": object(),
    "experimental_max_worker_delay_secs": 60,
    "session_creation_timeout_secs": 30,
}


@pytest.mark.parametrize("field", sorted(NOT_IMPLEMENTED))
def test_unread_fields_raise_not_implemented(field):
    with pytest.raises(NotImplementedError, match=rf"^RunConfig\({field}=.*\) is not implemented yet: \S") as info:
        trainer.RunConfig(**{field: NOT_IMPLEMENTED[field]})
    assert "\n" not in str(info.value)
    with pytest.raises(NotImplementedError, match=field):
        trainer.RunConfig().replace(**{field: NOT_IMPLEMENTED[field]})


def test_defaults_and_distribute_fields_are_accepted():
    defaults = trainer.RunConfig(session_config=None, keep_checkpoint_every_n_hours=10000,
                                 device_fn=None, protocol=None, experimental_distribute=None,
                                 experimental_max_worker_delay_secs=None,
                                 session_creation_timeout_secs=7200)
    assert defaults == trainer.RunConfig()
    strategy = object()
    config = trainer.RunConfig(train_distribute=strategy, eval_distribute=strategy,
                               checkpoint_save_graph_def=False)
    assert config.train_distribute is strategy and config.eval_distribute is strategy


# -- the Kubeflow TFJob manifest (docs/examples/tfjob.yaml) -------------------------
def operator_tf_configs(job: dict) -> dict:
    """TF_CONFIG per pod, built as Kubeflow's training operator does (genClusterSpec):
    one address per replica, `<job>-<type>-<index>.<namespace>.svc:<port>`, the port
    from the `tfjob-port` port of the `tensorflow` container (default 2222), and the
    evaluator left out of the cluster."""
    name, namespace = job["metadata"]["name"], job["metadata"].get("namespace", "default")
    specs = job["spec"]["tfReplicaSpecs"]

    def port(spec):
        for container in spec["template"]["spec"]["containers"]:
            if container["name"] == "tensorflow":
                for p in container.get("ports", []):
                    if p.get("name") == "tfjob-port":
                        return p["containerPort"]
        return 2222

    cluster = {}
    for rtype, spec in specs.items():
        if rtype.lower() == "evaluator":
            continue
        rt = rtype.lower()
        cluster[rt] = [f"{name}-{rt}-{i}.{namespace}.svc:{port(spec)}" for i in range(spec["replicas"])]
    return {f"{rtype.lower()}:{i}": {"cluster": cluster, "task": {"type": rtype.lower(), "index": i},
                                     "environment": "cloud"}
            for rtype, spec in specs.items() for i in range(spec["replicas"])}


def test_tfjob_manifest_gives_run_config_two_workers_and_an_evaluator(monkeypatch):
    job = yaml.safe_load(TFJOB.read_text())
    assert job["apiVersion"] == "kubeflow.org/v1" and job["kind"] == "TFJob"
    specs = job["spec"]["tfReplicaSpecs"]
    assert {k: v["replicas"] for k, v in specs.items()} == {"Worker": 2, "Evaluator": 1}
    for spec in specs.values():
        (container,) = spec["template"]["spec"]["containers"]
        assert container["name"] == "tensorflow" and container["command"][0] == "python"
        assert spec["restartPolicy"] == "OnFailure"
    configs = operator_tf_configs(job)
    assert sorted(configs) == ["evaluator:0", "worker:0", "worker:1"]
    assert configs["worker:0"]["cluster"] == {
        "worker": ["taxi-trainer-worker-0.ml.svc:2222", "taxi-trainer-worker-1.ml.svc:2222"]}
    seen = {}
    for name, tf_config in configs.items():
        c = config_from(monkeypatch, tf_config)
        seen[name] = (c.task_type, c.task_id, c.is_chief, c.num_worker_replicas)
    assert seen == {"worker:0": ("worker", 0, True, 2),
                    "worker:1": ("worker", 1, False, 2),
                    "evaluator:0": ("evaluator", 0, False, 0)}
