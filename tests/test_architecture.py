"""The layering rules of docs/architecture.md, checked on the source tree.

(import-linter, run by scripts/test.sh, checks the package layers; these
checks cover what it cannot express.)
"""

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ["trainer", "components", "pipeline", "serving", "airflow", "benchmarks", "docs"]


def imported_modules(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def python_files():
    for package in PACKAGES:
        yield from (ROOT / package).rglob("*.py")


def test_no_private_tensorflow_imports():
    offenders = [f"{p.relative_to(ROOT)}: {m}" for p in python_files() for m in imported_modules(p)
                 if m == "tensorflow.python" or m.startswith("tensorflow.python.")]
    assert offenders == []


# The one named exception: serving legacy TF1 SavedModels that tf.saved_model.load cannot import.
TF1_SESSION_EXCEPTION = "serving/tf1_session.py"


def test_no_tf_compat_v1_sessions():
    v1 = "tf.compat." + "v1."  # split so this file does not match its own search
    bad = (v1 + "Session", v1 + "train.MonitoredTrainingSession", v1 + "placeholder")
    offenders = [str(p.relative_to(ROOT)) for p in python_files()
                 if any(b in p.read_text() for b in bad)]
    assert offenders == [TF1_SESSION_EXCEPTION]


def test_trainer_imports_only_tensorflow_side():
    for path in (ROOT / "trainer").rglob("*.py"):
        for module in imported_modules(path):
            top = module.split(".")[0]
            assert top not in {"components", "pipeline", "serving", "airflow", "kfp"}, (path, module)


def test_only_the_orchestrator_modules_import_airflow_and_kfp():
    allowed = {"airflow": lambda rel: rel == "pipeline/airflow_dag.py" or rel.startswith("airflow/dags/"),
               "kfp": lambda rel: rel == "pipeline/kubeflow.py"}
    offenders = []
    for path in python_files():
        rel = str(path.relative_to(ROOT))
        for module in imported_modules(path):
            top = module.split(".")[0]
            if top in allowed and not allowed[top](rel):
                offenders.append(f"{rel}: {module}")
    assert offenders == []
