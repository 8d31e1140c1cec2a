"""The pipeline core: DSL, metadata store, local runner, YAML spec and CLI.

Importing this package does not import TensorFlow or Beam.

Example:
    >>> from pipeline import Pipeline, LocalRunner
"""

from pipeline.dsl import Pipeline  # noqa: F401
from pipeline.metadata import MetadataStore  # noqa: F401
from pipeline.runner import LocalRunner, PipelineLockedError, PipelineRunError, RunResult  # noqa: F401
