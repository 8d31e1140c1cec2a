"""`import trainer` works without scikit-learn (a dev extra), and trainer.sklearn loads on use."""

import subprocess
import sys

BLOCK_SKLEARN = """
import sys
class NoSklearn:
    def find_spec(self, name, path=None, target=None):
        if name == "sklearn" or name.startswith("sklearn."):
            raise ImportError("No module named 'sklearn' (blocked by the test)")
sys.meta_path.insert(0, NoSklearn())
"""


def test_import_trainer_without_scikit_learn():
    script = BLOCK_SKLEARN + """
import trainer
from trainer import learn
assert trainer.DNNClassifier and learn.DNNClassifier
try:
    trainer.sklearn
except ImportError as e:
    print("lazy:", e)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "lazy: No module named 'sklearn'" in done.stdout  # only the wrappers need it


def test_trainer_sklearn_is_reachable_as_an_attribute():
    import trainer

    assert trainer.sklearn.DNNClassifier.__module__ == "trainer.sklearn"
