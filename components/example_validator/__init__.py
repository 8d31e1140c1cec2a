"""ExampleValidator: an Anomalies proto per split, against the schema and the previous span."""

from components.example_validator.component import ExampleValidator, ExampleValidatorParameters  # noqa: F401
