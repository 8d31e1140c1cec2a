import os
import subprocess
import sys
import time

import pytest

from pipeline.cli import load_pipeline, main

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_help_is_fast_and_does_not_import_tensorflow():
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-c", "import sys, runpy; sys.argv=['pipeline', '--help'];\n"
                          "try: runpy.run_module('pipeline', run_name='__main__')\n"
                          "except SystemExit: pass\n"
                          "print('TF' if 'tensorflow' in sys.modules or 'apache_beam' in sys.modules else 'noTF')"],
                         cwd=REPO, capture_output=True, text=True, timeout=60)
    assert time.monotonic() - started < 5
    assert "usage: python -m pipeline" in out.stdout and out.stdout.strip().endswith("noTF")


def test_check_and_errors(capsys, tmp_path):
    assert main(["check", os.path.join(REPO, "pipeline/examples/taxi.yaml")]) == 0
    assert "ExampleGen -> StatisticsGen -> SchemaGen -> ExampleValidator -> Transform" in capsys.readouterr().out
    assert main(["check", str(tmp_path / "nope.txt")]) == 2
    assert "expected an existing .py or .yaml file" in capsys.readouterr().err
    (tmp_path / "p.py").write_text("x = 1\n")
    assert main(["check", str(tmp_path / "p.py")]) == 2
    assert "defines no create_pipeline()" in capsys.readouterr().err
    assert main(["runs"]) == 2
    assert "needs --root DIR or --metadata URL" in capsys.readouterr().err
    assert main(["runs", "--root", str(tmp_path)]) == 2
    assert "there is no metadata.sqlite in it" in capsys.readouterr().err


def test_py_pipeline_overrides(tmp_path):
    (tmp_path / "p.py").write_text("def create_pipeline(*, root):\n    raise AssertionError\n")
    with pytest.raises(ValueError, match=r"create_pipeline\(\) does not accept \['beam_pipeline_args'\]"):
        load_pipeline(str(tmp_path / "p.py"), root="x", beam_args=["--a"])
    p = load_pipeline(os.path.join(REPO, "pipeline/examples/taxi_pipeline.py"), root=str(tmp_path),
                      beam_args=["--runner=FlinkRunner"])
    assert p.root == str(tmp_path) and p.beam_pipeline_args == ("--runner=FlinkRunner",)


def test_beam_arg_accepts_both_spellings():
    from pipeline.cli import _join_beam_args, _parser

    argv = _join_beam_args(["run", "p.yaml", "--beam-arg", "--runner=FlinkRunner", "--beam-arg=--parallelism=2"])
    assert _parser().parse_args(argv).beam_args == ["--runner=FlinkRunner", "--parallelism=2"]


def test_parameters_json_tags_dataclass_types():
    from components.base import parameters_to_json
    from components.feature_spec import FeatureSpec, Hashed, Vocabulary
    from components.transform import TransformParameters

    a = parameters_to_json(TransformParameters(feature_spec=FeatureSpec(features=(Hashed("x"),))))
    b = parameters_to_json(TransformParameters(feature_spec=FeatureSpec(features=(Vocabulary("x"),))))
    assert '"__type__": "Hashed"' in a and a != b
    with pytest.raises(TypeError, match="parameters_to_json got parameters=3; expected a dataclass"):
        parameters_to_json(3)


def test_set_passes_keyword_arguments_to_a_py_pipeline(tmp_path):
    p = load_pipeline(os.path.join(REPO, "pipeline/examples/taxi_full_pipeline.py"), root=str(tmp_path),
                      overrides=["data_root=/data/taxi", "train_steps=200", "file_pattern=span-*.csv"])
    example_gen = p.component("ExampleGen").parameters
    assert (example_gen.input_base, example_gen.file_pattern) == ("/data/taxi", "span-*.csv")
    assert p.component("Trainer").parameters.train_steps == 200  # parsed as YAML: an int
    with pytest.raises(ValueError, match=r"create_pipeline\(\) has no parameter 'data_dir'.*data_root"):
        load_pipeline(os.path.join(REPO, "pipeline/examples/taxi_full_pipeline.py"), overrides=["data_dir=/x"])
    with pytest.raises(ValueError, match="expected KEY=VALUE"):
        load_pipeline(os.path.join(REPO, "pipeline/examples/taxi_full_pipeline.py"), overrides=["data_root"])
    with pytest.raises(ValueError, match="repeats --root"):
        load_pipeline(os.path.join(REPO, "pipeline/examples/taxi_full_pipeline.py"), root=str(tmp_path),
                      overrides=["root=/elsewhere"])


def test_compile_kfp_is_the_kubeflow_compiler(tmp_path):
    yaml = pytest.importorskip("yaml")
    pytest.importorskip("kfp")
    out = tmp_path / "taxi.yaml"
    assert main(["compile-kfp", os.path.join(REPO, "pipeline/examples/taxi.yaml"), "--output", str(out)]) == 0
    spec = yaml.safe_load(out.read_text())
    assert set(spec["root"]["dag"]["tasks"]) == {"exit-handler-1", "finish-run"}  # the run is marked at the end
    tasks = spec["components"]["comp-exit-handler-1"]["dag"]["tasks"]
    assert {"examplegen", "transform", "trainer", "pusher"} <= set(tasks)  # KFP's sanitized names
    assert "transform" in tasks["trainer"]["dependentTasks"]
