import json

import pytest

import trainer


def test_defaults_and_replace():
    config = trainer.RunConfig()
    assert config.checkpoint_every == (None, 600)
    assert config.is_chief and config.num_worker_replicas == 1 and config.task_type == "worker"
    other = config.replace(save_checkpoints_steps=10)
    assert other.checkpoint_every == (10, None) and config.save_checkpoints_steps is None
    assert json.loads(other.to_json())["save_checkpoints_steps"] == 10
    with pytest.raises(ValueError, match=r"unknown fields \['nope'\]"):
        config.replace(nope=1)


def test_tf_config_parsing(monkeypatch):
    cluster = {"chief": ["h0:1"], "worker": ["h1:1", "h2:1"], "ps": ["h3:1"]}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 1}}))
    config = trainer.RunConfig()
    assert config.task_type == "worker" and config.task_id == 1
    assert not config.is_chief
    assert config.num_worker_replicas == 3 and config.num_ps_replicas == 1
    assert config.cluster_spec.as_dict()["ps"] == ["h3:1"]
    assert config.master == "grpc://h2:1"
    assert config.global_id_in_cluster == 2
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "chief", "index": 0}}))
    assert trainer.RunConfig().is_chief


def test_tf_config_errors(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="TF_CONFIG is not valid JSON"):
        trainer.RunConfig()
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 3}}))
    with pytest.raises(ValueError, match="is not in the cluster"):
        trainer.RunConfig()


def test_config_errors():
    with pytest.raises(ValueError, match="set at most one"):
        trainer.RunConfig(save_checkpoints_steps=1, save_checkpoints_secs=1)
    with pytest.raises(ValueError, match="steps_per_loop=0"):
        trainer.RunConfig(steps_per_loop=0)
    with pytest.raises(ValueError, match="keep_checkpoint_max=-1"):
        trainer.RunConfig(keep_checkpoint_max=-1)


def test_model_dir_conflict(tmp_path):
    with pytest.raises(ValueError, match="they differ"):
        trainer.Estimator(lambda features: None, model_dir=str(tmp_path / "a"),
                          config=trainer.RunConfig(model_dir=str(tmp_path / "b")))
