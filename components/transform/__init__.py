"""Transform: tf.Transform on Beam, from a user preprocessing_fn or the feature spec."""

from components.transform.component import Transform, TransformParameters  # noqa: F401
