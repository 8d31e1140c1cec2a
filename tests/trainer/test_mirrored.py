"""MirroredStrategy on two logical CPU devices gives the single-device results (issue 9).

The comparison runs in a child process (`mirrored_check.py`): logical devices must be set
before TensorFlow first touches its devices, which the test process has long done.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

CHECK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mirrored_check.py")
TIMEOUT_S = 600  # The check takes ~1-2 min on 2 cores; a hang must not hold CI.

# Tolerances, relative to max(|single|, 1e-3). The replicas' half-batch losses are averaged and
# their gradients summed, so float32 sums run in another order than on one device: each
# reordering is ~1e-7 relative, and 30 steps of Adagrad/FTRL carry it into the weights.
# Measured: losses 1e-7, weights 2e-5 (custom) and 2e-6 (wide & deep), predictions 1e-6,
# checkpoint moves 4e-6. The bounds keep a margin of 50x or more over those.
LOSS_REL = 1e-5
WEIGHTS_REL = 1e-3
OUTPUT_REL = 1e-4


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("mirrored"))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run([sys.executable, CHECK, workdir], capture_output=True, text=True,
                          timeout=TIMEOUT_S, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("model", ["custom", "wide_deep"])
def test_training_matches_one_device(measured, model):
    result = measured[model]
    assert result["steps"] == [30, 30] and result["global_step"] == [30, 30]
    assert result["loss_rel"] < LOSS_REL, result
    assert result["weights_rel"] < WEIGHTS_REL, result


@pytest.mark.parametrize("model", ["custom", "wide_deep"])
def test_evaluate_and_predict_match_one_device(measured, model):
    result = measured[model]
    for key, (single, mirrored) in result["eval"].items():
        assert abs(mirrored - single) <= OUTPUT_REL * max(abs(single), 1e-3), (key, single, mirrored)
    assert result["eval_again_equal"]  # the reused program restores and resets its metrics
    assert result["predict_rows"] == [256, 256]
    assert result["predict_rel"] < OUTPUT_REL


def test_export_under_the_strategy_serves_the_same_answers(measured):
    assert measured["custom"]["export_rel"] < OUTPUT_REL


def test_checkpoints_move_between_strategy_and_none(measured):
    for order, diff in measured["checkpoint_moves"].items():
        assert diff < WEIGHTS_REL, (order, diff)


def test_input_two_replicas_cannot_share_gets_a_clear_error(measured):
    errors = measured["errors"]
    assert errors["odd_batch"] and "batch of 5 does not divide across the 2 replicas" in errors["odd_batch"]
    assert errors["unbatched"] and "cannot split the input_fn's dataset across 2 replicas" in errors["unbatched"]
    assert all("\n" not in message for message in errors.values())
