"""The YAML pipeline spec: point the pipeline at a new data set without writing Python.

``load_spec(path)`` parses and validates the whole file (data, label, features,
validation, schema, model, training, tuning, evaluation, push); ``build_pipeline(spec)``
makes the Pipeline: ExampleGen -> StatisticsGen -> SchemaGen -> ExampleValidator ->
Transform, and with ``model`` + ``training`` the Trainer, resolver, Evaluator,
InfraValidator and Pusher, with ``tuning`` also a Tuner whose best values the Trainer
applies to ``model.args`` (pipeline/yaml_model.py). See docs/pipeline_yaml.md and
docs/tuner.md.

Example:
    >>> spec = load_spec("pipeline/examples/taxi.yaml")
    >>> spec.model.estimator
    'DNNLinearCombinedClassifier'
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import (BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator,
                      model_validator)

from components.feature_spec import FeatureSpec
from components.trainer.canned_config import CANNED_ESTIMATORS
from pipeline.yaml_model import REGRESSION, check_model_sections, model_components, task_of



class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SplitSection(_Section):
    ratios: dict[str, int] = Field(default_factory=lambda: {"train": 2, "eval": 1})
    hash_key: str | None = None
    partition_feature: str | None = None


class DataSection(_Section):
    path: str
    format: Literal["csv", "tfrecord", "parquet"] = "csv"
    split: SplitSection = SplitSection()
    bad_rows: Literal["fail", "quarantine"] = "fail"
    max_quarantined_fraction: float = Field(0.10, ge=0, le=1)
    columns: list[str] | None = None
    column_types: dict[str, Literal["int", "float", "string"]] = Field(default_factory=dict)


class LabelSection(_Section):
    name: str
    expression: str | None = None

    @field_validator("expression")
    @classmethod
    def _expression_parses(cls, value: str | None, info: ValidationInfo) -> str | None:
        """A bad expression fails here, naming ``label.expression``, not when ExampleGen is built."""
        if value is None:
            return value
        from components.example_gen.expressions import Expression

        name = info.data.get("name", "label")
        expression = Expression(name, value)
        if name in expression.columns:
            raise ValueError(f"Derived column {name!r} got expression={value!r}, which reads {name!r} itself; "
                             f"the derived column would replace its own input. How to fix: give the label its "
                             f"own name, e.g. name: {name}_label.")
        return value


class DriftSection(_Section):
    l_infinity: float | None = Field(default=None, ge=0, le=1)
    jensen_shannon: float | None = Field(default=None, ge=0, le=1)
    features: dict[str, float] = Field(default_factory=dict)


class ValidationSection(_Section):
    on_anomaly: Literal["fail", "warn"] = "fail"
    max_unseen_fraction: float = Field(default=0.0, ge=0, le=1)
    max_new_value_fraction: float = Field(default=0.01, ge=0, le=1)
    drift: DriftSection = DriftSection()


class TransformSection(_Section):
    module_file: str | None = None
    analyze_spans: int = Field(default=1, ge=1)
    use_analyzer_cache: bool | None = None


class ModelSection(_Section):
    estimator: str
    args: dict[str, Any] = Field(default_factory=dict)

    @field_validator("estimator")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in CANNED_ESTIMATORS:
            raise ValueError(f"expected one of {list(CANNED_ESTIMATORS)}")
        return value


class TrainingSection(_Section):
    steps: int = Field(ge=1)
    eval_steps: int | None = Field(default=None, ge=1)
    batch_size: int = Field(default=64, ge=1)
    random_seed: int | None = None


class PrunerSection(_Section):
    """``tuning.pruner``: components.tuner.Pruner."""

    type: Literal["median", "hyperband", "none"] = "median"
    startup_trials: int = Field(default=2, ge=0)
    warmup_steps: int = Field(default=0, ge=0)


class TuningSection(_Section):
    """The Tuner (components.tuner); ``space`` entries are checked against model.estimator
    by ``pipeline.yaml_model.check_tuning``."""

    trials: int = Field(ge=1)
    steps: int | None = Field(default=None, ge=1)
    eval_every: int | None = Field(default=None, ge=1)
    eval_steps: int | None = Field(default=None, ge=1)
    metric: str | None = None
    direction: Literal["maximize", "minimize"] | None = None
    sampler: Literal["tpe", "random"] = "tpe"
    seed: int | None = Field(default=None, ge=0)
    pruner: PrunerSection = PrunerSection()
    storage: str | None = None
    study_name: str | None = None
    space: dict[str, Any]

    @field_validator("pruner", mode="before")
    @classmethod
    def _pruner_by_name(cls, value: Any) -> Any:
        return {"type": value} if isinstance(value, str) else value


class Bound(_Section):
    """One threshold; names and directions: ``pipeline.yaml_model.METRICS``."""

    lower_bound: float | None = None
    upper_bound: float | None = None
    min_change: float | None = None


class EvaluationSection(_Section):
    """``metrics`` are computed besides the task's defaults (names: components/evaluator/metric_names.py)."""

    metrics: list[str] = Field(default_factory=list)
    thresholds: dict[str, Bound] = Field(default_factory=dict)
    slices: list[list[str]] = Field(default_factory=list)


class TFLiteSection(_Section):
    """``push.tflite``: a TF Lite model pushed beside the SavedModel (components.trainer.TFLiteOptions)."""

    quantize: Literal["dynamic", "float16"] | None = None
    select_tf_ops: bool = False


class PushSection(_Section):
    destination: str | None = None
    model_name: str | None = None
    tflite: bool | TFLiteSection = False  # true: float32, builtin ops only


class PipelineSpec(_Section):
    """The whole YAML file, validated. Paths are resolved against the file's directory."""

    name: str
    root: str | None = None
    data: DataSection
    label: LabelSection | None = None
    features: list[dict[str, Any]]
    schema_file: str | None = Field(default=None, alias="schema")
    validation: ValidationSection = ValidationSection()
    transform: TransformSection = TransformSection()
    model: ModelSection | None = None
    training: TrainingSection | None = None
    tuning: TuningSection | None = None
    evaluation: EvaluationSection | None = None
    push: PushSection | None = None
    beam_args: list[str] = Field(default_factory=list)
    enable_cache: bool = True
    metadata: str | None = None
    base_dir: str = "."

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _model_sections_fit(self) -> PipelineSpec:
        check_model_sections(self)
        return self

    def path(self, value: str) -> str:
        if os.path.isabs(value) or "://" in value:  # absolute, or a filesystem URL (gs://bucket/models)
            return value
        return os.path.normpath(os.path.join(self.base_dir, value))

    @property
    def task(self) -> str | None:
        """The task model.estimator and model.args imply ("classification", "multiclass" or "regression");
        None without a model."""
        return task_of(self.model.estimator, self.model.args) if self.model else None

    @property
    def feature_spec(self) -> FeatureSpec:
        """The features and label; a regressor's label is float, a classifier's with
        ``model.args.label_vocabulary`` the class names (string), otherwise int class ids."""
        config: dict[str, Any] = {"features": self.features}
        if self.label is not None:
            named = self.model is not None and "label_vocabulary" in self.model.args and self.task != REGRESSION
            config["label"] = {**self.label.model_dump(exclude_none=True),
                               "dtype": "float" if self.task == REGRESSION else "string" if named else "int"}
        return FeatureSpec.from_config(config)


def load_spec(path: str, *, overrides: Sequence[str] = ()) -> PipelineSpec:
    """Reads and validates a YAML pipeline spec; errors name the file and the field.

    Args:
        path: The YAML file.
        overrides: ``KEY=VALUE`` strings applied before validation; KEY is a dotted path
            into the mapping, VALUE is parsed as YAML, e.g. ``training.steps=100`` or
            ``model.args.dnn_hidden_units=[8]`` (the CLI's ``--set``).
    """
    import yaml

    try:
        with open(path) as f:
            raw = yaml.safe_load(f)
    except FileNotFoundError:
        raise ValueError(f"load_spec got path={path!r}; no such file. How to fix: check the path.") from None
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: not valid YAML ({e}). How to fix: correct the syntax.") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a mapping with name, data, features, ...; got {type(raw).__name__}. "
                         "How to fix: start from pipeline/examples/taxi.yaml.")
    for override in overrides:
        apply_override(raw, override)
    try:
        spec = PipelineSpec(**raw, base_dir=os.path.dirname(os.path.abspath(path)))
        spec.feature_spec  # noqa: B018 - validates the features section
    except ValidationError as e:
        problems = "; ".join(_problem(err) for err in e.errors())
        doc = "docs/tuner.md" if all(err["loc"][:1] == ("tuning",) for err in e.errors()) else "docs/pipeline_yaml.md"
        hint = (f" How to fix: see {doc}." if any(err["loc"] for err in e.errors()) and "How to fix" not in problems
                else "")
        raise ValueError(f"{path}: {problems}.{hint}") from None
    except (ValueError, TypeError) as e:
        raise ValueError(f"{path}: {e}") from None
    except NotImplementedError as e:  # a setting this version does not do (its message names it)
        raise NotImplementedError(f"{path}: {e}") from None
    return spec


def _problem(err: dict[str, Any]) -> str:
    where = ".".join(str(x) for x in err["loc"])
    message = err["msg"].removeprefix("Value error, ")
    if not where:  # a whole-spec check (check_model_sections): its message names the field
        return message.rstrip(".")
    return f"{where}: {err['msg'].rstrip('.') if 'How to fix' in message else err['msg']}"


def apply_override(raw: dict[str, Any], override: str) -> None:
    """Sets ``KEY=VALUE`` (dotted KEY, VALUE parsed as YAML) in the raw mapping, in place.

    Example:
        >>> raw = {"training": {"steps": 6000}}
        >>> apply_override(raw, "training.steps=50")
        >>> raw
        {'training': {'steps': 50}}
    """
    import yaml

    key, sep, text = override.partition("=")
    if not sep or not key or any(not part for part in key.split(".")):
        raise ValueError(f"load_spec got override {override!r}; expected KEY=VALUE with a dotted KEY. How to "
                         "fix: e.g. --set training.steps=100.")
    *parents, leaf = key.split(".")
    node = raw
    for i, part in enumerate(parents):
        if node.get(part) is None:  # absent, or an empty section such as "push:"
            node[part] = {}
        node = node[part]
        if not isinstance(node, dict):
            raise ValueError(f"load_spec got override {override!r}; {'.'.join(parents[:i + 1])} is not a "
                             "mapping. How to fix: set the whole value, e.g. "
                             f"--set {'.'.join(parents[:i + 1])}=[...].")
    try:
        node[leaf] = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ValueError(f"load_spec got override {override!r}; the value is not valid YAML ({e}). How to "
                         "fix: quote it, e.g. --set 'model.args.dnn_hidden_units=[8, 4]'.") from None


def build_pipeline(spec: PipelineSpec, *, root: str | None = None, beam_pipeline_args: list[str] | None = None,
                   metadata: str | None = None, enable_cache: bool | None = None) -> Any:
    """The Pipeline described by ``spec`` (keyword arguments override the file)."""
    from components.example_gen import ExampleGen, SplitConfig
    from components.example_validator import ExampleValidator
    from components.schema_gen import ImportSchemaGen, SchemaGen
    from components.statistics_gen import StatisticsGen
    from components.transform import Transform
    from pipeline.dsl import Pipeline

    features = spec.feature_spec
    data_path = spec.path(spec.data.path)
    input_base, pattern = (data_path, "*") if os.path.isdir(data_path) else os.path.split(data_path)
    derived = {spec.label.name: spec.label.expression} if spec.label and spec.label.expression else {}
    column_types = {**features.column_types(), **spec.data.column_types}
    if spec.task == REGRESSION and not derived:
        column_types.setdefault(spec.label.name, "float")  # a raw numeric target
    split = SplitConfig(names=tuple(spec.data.split.ratios), ratios=tuple(spec.data.split.ratios.values()),
                        hash_key=spec.data.split.hash_key, partition_feature=spec.data.split.partition_feature)
    example_gen = ExampleGen(input_base, file_pattern=pattern, format=spec.data.format, split=split,
                             column_types=column_types, columns=spec.data.columns, derived_columns=derived,
                             label=spec.label.name if spec.label else None, bad_rows=spec.data.bad_rows,
                             max_quarantined_fraction=spec.data.max_quarantined_fraction)
    examples = example_gen.outputs["examples"]
    statistics_gen = StatisticsGen(examples)
    statistics = statistics_gen.outputs["statistics"]
    schema_node = (ImportSchemaGen(spec.path(spec.schema_file)) if spec.schema_file
                   else SchemaGen(statistics))
    v = spec.validation
    validator = ExampleValidator(
        statistics, schema_node.outputs["schema"], baseline_statistics=statistics.previous_span(),
        on_anomaly=v.on_anomaly, max_unseen_fraction=v.max_unseen_fraction,
        max_new_value_fraction=v.max_new_value_fraction,
        l_infinity_threshold=v.drift.l_infinity, jensen_shannon_threshold=v.drift.jensen_shannon,
        feature_thresholds=v.drift.features)
    t = spec.transform
    transform = Transform(
        examples.span_window(t.analyze_spans) if t.analyze_spans > 1 else examples, schema_node.outputs["schema"],
        feature_spec=None if t.module_file else features,
        module_file=spec.path(t.module_file) if t.module_file else None, use_analyzer_cache=t.use_analyzer_cache)
    root = root or spec.path(spec.root or os.path.join("runs", spec.name))
    components = [example_gen, statistics_gen, schema_node, validator, transform]
    if spec.model is not None:
        components += model_components(spec, features=features, examples=examples,
                                       schema=schema_node.outputs["schema"], transform=transform, root=root,
                                       statistics=statistics)
    return Pipeline(
        spec.name, root, components,
        enable_cache=spec.enable_cache if enable_cache is None else enable_cache,
        beam_pipeline_args=spec.beam_args if beam_pipeline_args is None else beam_pipeline_args,
        metadata=metadata or spec.metadata)
