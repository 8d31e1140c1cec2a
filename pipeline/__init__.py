"""The pipeline core: DSL, metadata store, local runner, YAML spec and CLI.

Importing this package does not import TensorFlow or Beam.

Example:
    >>> from pipeline import Pipeline, LocalRunner
"""

import os

# One Keras for the user's modules in every pipeline process: tf.keras is tf_keras, the Keras 2
# API that TFX trainer modules were written for and that tensorflow_transform requires (its import
# sets this same default). Set before TensorFlow resolves tf.keras, so a Trainer's module no longer
# gets Keras 3 when the Transform was cached and tf_keras when it ran. A value the user set is kept;
# `import keras` gives Keras 3 either way. See docs/trainer_modules.md.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from pipeline.dsl import Pipeline  # noqa: F401
from pipeline.metadata import MetadataStore  # noqa: F401
from pipeline.runner import LocalRunner, PipelineLockedError, PipelineRunError, RunResult  # noqa: F401
