# Every target installs what it needs into .venv first (idempotent, fast when done).
PY := .venv/bin/python
.PHONY: install orchestrators demo taxi iris test test-fast lint bench clean

install: .venv/.installed

orchestrators: .venv/.orchestrators

.venv/.installed: pyproject.toml constraints.txt
	BOOTSTRAP_EXTRAS=dev bash scripts/bootstrap.sh
	touch $@

# The orchestrators (Airflow 3, kfp) only for the tests that use them; the demo needs neither.
.venv/.orchestrators: .venv/.installed
	BOOTSTRAP_EXTRAS=dev,airflow,kubeflow bash scripts/bootstrap.sh
	touch $@

## The project's main job on bundled sample data: the full taxi pipeline (ExampleGen ...
## Transform -> Trainer -> Evaluator -> InfraValidator -> Pusher) on the bundled CSV; the
## blessed model lands in runs/taxi/serving/taxi/<version>/ and the run prints how to serve
## and query it. Run it again and unchanged components come from the cache.
demo: install
	$(PY) -m pipeline run pipeline/examples/taxi_full_pipeline.py --root runs/taxi

taxi: demo

## The seeds' custom Iris Estimator: trained, evaluated, exported, queried via classify.
iris: install
	$(PY) docs/examples/custom_estimator_iris.py --model_dir runs/iris

## The test suite CI runs (includes the slow tests).
test: install .venv/.orchestrators
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
