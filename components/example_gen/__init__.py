"""ExampleGen: files (CSV, TFRecord, Parquet) to split tf.Examples."""

from components.example_gen.component import ExampleGen, ExampleGenParameters, SplitConfig  # noqa: F401
