# Every target installs what it needs into .venv first (idempotent, fast when done).
PY := .venv/bin/python
.PHONY: install demo taxi test test-fast lint bench clean

install: .venv/.installed

.venv/.installed: pyproject.toml constraints.txt
	bash scripts/bootstrap.sh
	touch $@

## The project's main job on bundled sample data (today: the Iris custom Estimator,
## trained, evaluated, exported and queried through its classify signature).
demo: install
	$(PY) docs/examples/custom_estimator_iris.py --model_dir runs/iris

## The full taxi pipeline (ExampleGen ... Transform -> Trainer -> Evaluator ->
## InfraValidator -> Pusher) on the bundled CSV; the blessed model lands in runs/taxi/serving/taxi/.
taxi: install
	$(PY) -m pipeline run pipeline/examples/taxi_full_pipeline.py --root runs/taxi

## The test suite CI runs (includes the slow tests).
test: install
	bash scripts/test.sh

## Fast feedback: skip tests marked slow.
test-fast: install
	$(PY) -m pytest -m "not slow" -q

lint: install
	.venv/bin/lint-imports

bench: install
	$(PY) benchmarks/train_throughput.py

clean:
	rm -rf .venv build *.egg-info .pytest_cache
