"""Dependencies point one way: pipeline -> components -> trainer; no private TensorFlow API."""

import ast
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# The data-side modules this suite owns; other components are checked by their owners' tests
# (and by lint-imports).
OWNED = {"components": ("__init__.py", "artifacts.py", "base.py", "beam_utils.py", "feature_spec.py",
                        "example_gen", "statistics_gen", "schema_gen", "example_validator", "transform")}


def _owned(package, path):
    if package not in OWNED:
        return True
    first = os.path.relpath(path, os.path.join(REPO, package)).split(os.sep)[0]
    return first in OWNED[package]


def _imports(package):
    for folder, _, files in os.walk(os.path.join(REPO, package)):
        for name in files:
            path = os.path.join(folder, name)
            if name.endswith(".py") and _owned(package, path):
                with open(path) as f:
                    tree = ast.parse(f.read())
                for node in ast.walk(tree):
                    if isinstance(node, ast.Import):
                        yield path, [a.name for a in node.names]
                    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                        yield path, [node.module]


@pytest.mark.parametrize("package, forbidden", [
    ("components", ("pipeline", "serving", "tensorflow.python")),
    ("pipeline", ("serving", "tensorflow.python")),
])
def test_import_direction(package, forbidden):
    bad = [(path, module) for path, modules in _imports(package) for module in modules
           if any(module == f or module.startswith(f + ".") for f in forbidden)]
    assert bad == []
