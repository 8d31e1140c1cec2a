# The pipeline image: what each Kubeflow Pipelines task runs (python -m pipeline run-node ...),
# built from the repository root:
#
#   docker build -t REGISTRY/estimator-pipeline:0.1.0 .
#   docker push REGISTRY/estimator-pipeline:0.1.0
#   python -m pipeline.kubeflow compile pipeline/examples/taxi.yaml -o taxi-kfp.yaml \
#       --image REGISTRY/estimator-pipeline:0.1.0 --metadata postgresql+psycopg://...
#
# UNTESTED: this repository's CI has no container engine, so the image has never been built
# there (see docs/kubeflow.md). It holds the project installed with the pinned versions of
# constraints.txt (no extras: a task needs neither kfp nor airflow) and the repository's
# pipeline files and bundled data under /app, the working directory, so a task's
# pipeline/examples/taxi.yaml is the one in the repository.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TF_CPP_MIN_LOG_LEVEL=2

WORKDIR /app

# Dependencies first (a layer that changes only with the pins), then the project itself.
COPY pyproject.toml constraints.txt README.md ./
COPY trainer/ trainer/
COPY components/ components/
COPY pipeline/ pipeline/
COPY serving/ serving/
RUN python -m pip install "pip>=24" wheel \
    && python -m pip install -c constraints.txt .

# The bundled data the example pipelines read (data/taxi, data/taxi_spans).
COPY data/ data/

# Each KFP task gives the arguments: FILE --node ID --run-key KEY --root ROOT --metadata URL.
CMD ["python", "-m", "pipeline", "--help"]
