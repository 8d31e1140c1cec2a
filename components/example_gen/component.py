"""ExampleGen: reads CSV, TFRecord (tf.Example, gzip or not) or Parquet into split tf.Examples.

Example:
    >>> gen = ExampleGen("data/taxi", file_pattern="data.csv",
    ...                  derived_columns={"big_tipper": "tips > 0.2 * fare"}, label="big_tipper")
    >>> gen.outputs["examples"].artifact_type.TYPE_NAME
    'Examples'
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence

from components.artifacts import Examples
from components.base import Component
from components.example_gen.spans import resolve_span

FORMATS = ("csv", "tfrecord", "parquet")
KINDS = ("int", "float", "string")
BAD_ROWS = ("fail", "quarantine")


@dataclasses.dataclass(frozen=True)
class SplitConfig:
    """How rows are split.

    Attributes:
        names: Split names, e.g. ("train", "eval").
        ratios: Relative sizes, same length as ``names`` (default 2:1).
        hash_key: Hash this column's value (rows with equal keys land together);
            None hashes the whole record.
        partition_feature: Use this column's value as the split name instead of hashing.
    """

    names: tuple[str, ...] = ("train", "eval")
    ratios: tuple[int, ...] = (2, 1)
    hash_key: str | None = None
    partition_feature: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", tuple(self.names))
        object.__setattr__(self, "ratios", tuple(self.ratios))
        if not self.names or len(set(self.names)) != len(self.names):
            raise ValueError(
                f"SplitConfig got names={self.names!r}; expected distinct, non-empty split names. "
                "How to fix: e.g. names=('train', 'eval')."
            )
        if self.partition_feature is None and (
                len(self.ratios) != len(self.names) or any(
                    not isinstance(r, int) or isinstance(r, bool) or r < 1 for r in self.ratios)):
            raise ValueError(
                f"SplitConfig got ratios={self.ratios!r} for names={self.names!r}; expected one positive "
                "int per split. How to fix: e.g. ratios=(2, 1)."
            )


@dataclasses.dataclass(frozen=True)
class ExampleGenParameters:
    """ExampleGen's parameters (see ``ExampleGen``)."""

    input_base: str
    file_pattern: str = "*"
    format: str = "csv"
    split: SplitConfig = SplitConfig()
    column_types: Mapping[str, str] = dataclasses.field(default_factory=dict)
    columns: tuple[str, ...] | None = None
    derived_columns: Mapping[str, str] = dataclasses.field(default_factory=dict)
    label: str | None = None
    bad_rows: str = "fail"
    max_quarantined_fraction: float = 0.10


class ExampleGen(Component):
    """Ingests files into tf.Examples, split by hash (default train:eval = 2:1).

    Args:
        input_base: Directory holding the input files.
        file_pattern: Glob under ``input_base``; ``{SPAN}`` / ``{VERSION}`` pick the latest span.
        format: "csv", "tfrecord" (tf.Example; gzip detected) or "parquet".
        split: A SplitConfig.
        column_types: Declared kinds ("int"/"float"/"string"); a value that does not parse is a
            bad row. Other CSV columns are inferred from all their non-empty values: int if
            every number is an integer, else float. NaN/inf never change the kind (they are bad
            values in any numeric column). A column whose values are numbers except for at most
            1% (one ``noon`` among 1,000 ints) keeps the numeric kind and those values are bad
            rows; with more, it is a string. Each such call is warned (the run's progress and
            the ``inference_warnings`` property); declare the column's kind to decide yourself.
        columns: If given, the exact header every CSV file must have.
        derived_columns: name -> expression over raw columns, e.g. a label
            ``{"big_tipper": "tips > 0.2 * fare"}``.
        label: A column that must be present in every row (missing label = bad row).
        bad_rows: "fail" (first bad row stops the run) or "quarantine" (bad rows go to
            ``quarantine/rows.jsonl`` in the output and are counted: ``rows_in``,
            ``quarantined``, and for CSV the physical lines ``lines_in``, ``lines_quarantined``).
        max_quarantined_fraction: In quarantine mode, the run fails when more than this share
            of the rows, or of the CSV lines, is quarantined (default 0.10; 1.0 accepts any).
            Lines count too, so one unterminated quote that swallows half the file fails.
        id: Node id (default "ExampleGen").
    """

    OUTPUTS = {"examples": Examples}
    PARAMETERS = ExampleGenParameters
    EXECUTOR = "components.example_gen.executor:run"

    def __init__(self, input_base: str, *, file_pattern: str = "*", format: str = "csv",
                 split: SplitConfig | None = None, column_types: Mapping[str, str] | None = None,
                 columns: Sequence[str] | None = None, derived_columns: Mapping[str, str] | None = None,
                 label: str | None = None, bad_rows: str = "fail", max_quarantined_fraction: float = 0.10,
                 id: str | None = None):
        if format not in FORMATS:
            raise ValueError(
                f"ExampleGen got format={format!r}; expected one of {FORMATS}. How to fix: pick one.")
        if bad_rows not in BAD_ROWS:
            raise ValueError(
                f"ExampleGen got bad_rows={bad_rows!r}; expected one of {BAD_ROWS}. How to fix: pick one.")
        if (isinstance(max_quarantined_fraction, bool) or not isinstance(max_quarantined_fraction, (int, float))
                or not 0 <= max_quarantined_fraction <= 1):
            raise ValueError(
                f"ExampleGen got max_quarantined_fraction={max_quarantined_fraction!r}; expected a number "
                "from 0 to 1. How to fix: e.g. 0.1 (fail past 10% quarantined), 1.0 to accept any share.")
        for name, kind in (column_types or {}).items():
            if kind not in KINDS:
                raise ValueError(
                    f"ExampleGen got column_types[{name!r}]={kind!r}; expected one of {KINDS}. "
                    "How to fix: declare int, float or string.")
        if derived_columns:
            from components.example_gen.expressions import Expression
            for name, source in derived_columns.items():
                Expression(name, source)  # raises on a bad expression, at build time
        params = ExampleGenParameters(
            input_base=os.path.abspath(input_base), file_pattern=file_pattern, format=format,
            split=split or SplitConfig(), column_types=dict(column_types or {}),
            columns=tuple(columns) if columns is not None else None,
            derived_columns=dict(derived_columns or {}), label=label, bad_rows=bad_rows,
            max_quarantined_fraction=float(max_quarantined_fraction))
        super().__init__(inputs={}, parameters=params, id=id)

    def fingerprint_extras(self) -> dict[str, str]:
        """Adds the resolved input files (path, size, mtime), so new data reruns ExampleGen."""
        extras = super().fingerprint_extras()
        p = self.parameters
        try:
            span, version, files = resolve_span(p.input_base, p.file_pattern)
        except ValueError:
            return {**extras, "files": "unresolved"}  # the executor reports the error
        stats = [f"{f}:{os.stat(f).st_size}:{os.stat(f).st_mtime_ns}" for f in files]
        return {**extras, "files": f"{span}:{version}:" + "|".join(stats)}
