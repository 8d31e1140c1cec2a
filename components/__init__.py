"""The data-side components (ExampleGen, StatisticsGen, SchemaGen, ExampleValidator, Transform).

Importing this package is cheap: component classes are specs; executors (Beam,
TensorFlow, tf.Transform) are imported only when a component runs.
"""

from components.artifacts import (  # noqa: F401
    Artifact, ExampleAnomalies, ExampleStatistics, Examples, InferenceResult, InfraBlessing, Model,
    ModelBlessing, ModelEvaluation, ModelRun, PushedModel, Schema, TransformCache,
    TransformGraph,
)
from components.base import Channel, Component, ComponentError, DataError, ExecutionContext, InputSpec  # noqa: F401
