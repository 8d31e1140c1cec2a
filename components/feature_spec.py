"""The declarative feature spec: one description of the inputs that drives Transform.

Each feature is a frozen dataclass; ``FeatureSpec.to_config()`` /
``FeatureSpec.from_config()`` round-trip plain dicts (the YAML ``features:``
section), so the trainer can later map the same spec to feature columns.

Example:
    >>> spec = FeatureSpec(
    ...     features=(Numeric("trip_miles"), Vocabulary("payment_type", top_k=10)),
    ...     label=Label("big_tipper", expression="tips > 0.2 * fare"))
    >>> FeatureSpec.from_config(spec.to_config()) == spec
    True
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Union


@dataclasses.dataclass(frozen=True)
class Numeric:
    """A number, scaled to z-score by Transform. ``default`` fills missing values."""

    name: str
    dtype: str = "float"
    default: float = 0.0
    TYPE: ClassVar[str] = "numeric"
    categorical: ClassVar[bool] = False


@dataclasses.dataclass(frozen=True)
class Bucketized:
    """A number bucketized at ``num_buckets`` quantile boundaries computed by Transform."""

    name: str
    num_buckets: int = 10
    default: float = 0.0
    TYPE: ClassVar[str] = "bucketized"
    categorical: ClassVar[bool] = True


@dataclasses.dataclass(frozen=True)
class Vocabulary:
    """A categorical (string or int) mapped to ids by a vocabulary of the ``top_k`` values."""

    name: str
    top_k: int | None = None
    num_oov_buckets: int = 1
    TYPE: ClassVar[str] = "vocabulary"
    categorical: ClassVar[bool] = True


@dataclasses.dataclass(frozen=True)
class Hashed:
    """A categorical hashed into ``hash_bucket_size`` buckets."""

    name: str
    hash_bucket_size: int = 100
    TYPE: ClassVar[str] = "hash"
    categorical: ClassVar[bool] = True


@dataclasses.dataclass(frozen=True)
class Crossed:
    """The hashed cross of several raw columns (their string values joined)."""

    name: str
    keys: tuple[str, ...] = ()
    hash_bucket_size: int = 1000
    TYPE: ClassVar[str] = "crossed"
    categorical: ClassVar[bool] = True


@dataclasses.dataclass(frozen=True)
class Embedding:
    """A dense embedding of another categorical feature (``source``), for the model side."""

    name: str
    source: str = ""
    dimension: int = 8
    TYPE: ClassVar[str] = "embedding"
    categorical: ClassVar[bool] = False


Feature = Union[Numeric, Bucketized, Vocabulary, Hashed, Crossed, Embedding]
LABEL_DTYPES = ("int", "float", "string")
FEATURE_TYPES: dict[str, type] = {cls.TYPE: cls for cls in (Numeric, Bucketized, Vocabulary, Hashed, Crossed, Embedding)}


@dataclasses.dataclass(frozen=True)
class Label:
    """The label: a raw column, or one derived by ``expression`` in ExampleGen.

    ``expression`` is arithmetic and comparisons over raw columns, e.g.
    ``"tips > 0.2 * fare"``; a boolean result is stored as int 0/1.
    ``dtype`` is the label Transform passes to the model: ``"int"`` (class ids, for
    classifiers), ``"float"`` (a numeric target, for regressors) or ``"string"`` (class
    names, mapped to ids by the model's ``label_vocabulary``).
    """

    name: str
    expression: str | None = None
    dtype: str = "int"


@dataclasses.dataclass(frozen=True)
class FeatureSpec:
    """The features and the label of a model's input."""

    features: tuple[Feature, ...]
    label: Label | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "features", tuple(self.features))
        for feature in self.features:
            if type(feature) not in FEATURE_TYPES.values():
                raise TypeError(
                    f"FeatureSpec got feature={feature!r}; expected one of "
                    f"{[c.__name__ for c in FEATURE_TYPES.values()]}. How to fix: build it with those classes."
                )
        names = [f.name for f in self.features]
        by_name = {f.name: f for f in self.features}
        for feature in self.features:
            if names.count(feature.name) > 1:
                raise ValueError(
                    f"FeatureSpec got two features named {feature.name!r}; expected unique names. "
                    "How to fix: rename one of them."
                )
            _check_positive(feature, ("num_buckets", "hash_bucket_size", "dimension", "top_k"))
            if isinstance(feature, Vocabulary) and feature.num_oov_buckets < 0:
                raise ValueError(
                    f"Vocabulary {feature.name!r} got num_oov_buckets={feature.num_oov_buckets!r}; "
                    "expected >= 0. How to fix: use 0 or more OOV buckets."
                )
            if isinstance(feature, Crossed) and len(feature.keys) < 2:
                raise ValueError(
                    f"Crossed {feature.name!r} got keys={feature.keys!r}; expected at least two "
                    "raw column names. How to fix: list the columns to cross."
                )
            if isinstance(feature, Embedding):
                source = by_name.get(feature.source)
                if source is None or not source.categorical:
                    raise ValueError(
                        f"Embedding {feature.name!r} got source={feature.source!r}; expected the name "
                        "of a categorical feature (vocabulary, hash, crossed or bucketized) in this "
                        "spec. How to fix: declare that feature and name it as source."
                    )
        if self.label is not None:
            self._check_label(self.label, by_name)

    def _check_label(self, label: Label, by_name: dict[str, Feature]) -> None:
        if label.name in by_name:
            raise ValueError(
                f"FeatureSpec got label={label.name!r}, which is also a feature; expected "
                "distinct names. How to fix: remove it from features."
            )
        if label.name in self.raw_columns:
            raise ValueError(
                f"FeatureSpec got label={label.name!r}, which a crossed feature reads; expected the "
                "label to stay out of the model's inputs. How to fix: remove it from that feature's keys."
            )
        if label.dtype not in LABEL_DTYPES:
            raise ValueError(
                f"FeatureSpec got label {label.name!r} with dtype={label.dtype!r}; expected one of "
                f"{list(LABEL_DTYPES)}. How to fix: 'int' for a classifier's class ids, 'float' for a "
                "regressor's target, 'string' for class names (with the model's label_vocabulary)."
            )

    @property
    def raw_columns(self) -> list[str]:
        """The raw input columns that Transform reads (label excluded)."""
        columns: list[str] = []
        for feature in self.features:
            for name in (feature.keys if isinstance(feature, Crossed) else
                         () if isinstance(feature, Embedding) else (feature.name,)):
                if name not in columns:
                    columns.append(name)
        return columns

    def column_types(self) -> dict[str, str]:
        """Declared raw types ExampleGen enforces: numeric/bucketized columns are float."""
        types = {}
        for feature in self.features:
            if isinstance(feature, Numeric):
                types[feature.name] = feature.dtype
            elif isinstance(feature, Bucketized):
                types[feature.name] = "float"
        return types

    def to_config(self) -> dict[str, Any]:
        """Plain-dict form (the YAML ``features:`` / ``label:`` sections)."""
        features = []
        for feature in self.features:
            entry = {"type": feature.TYPE, **dataclasses.asdict(feature)}
            if isinstance(feature, Crossed):
                entry["keys"] = list(feature.keys)
            features.append(entry)
        config: dict[str, Any] = {"features": features}
        if self.label is not None:
            config["label"] = {f.name: getattr(self.label, f.name) for f in dataclasses.fields(Label)
                               if f.name == "name" or getattr(self.label, f.name) != f.default}
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> FeatureSpec:
        """Builds a spec from ``to_config()`` output; errors name the bad entry."""
        features = []
        for i, entry in enumerate(config.get("features") or []):
            entry = dict(entry)
            kind = entry.pop("type", None)
            feature_cls = FEATURE_TYPES.get(kind)
            if feature_cls is None:
                raise ValueError(
                    f"FeatureSpec got features[{i}].type={kind!r}; expected one of "
                    f"{sorted(FEATURE_TYPES)}. How to fix: set type to one of those."
                )
            allowed = {f.name for f in dataclasses.fields(feature_cls)}
            unknown = sorted(set(entry) - allowed)
            if unknown or "name" not in entry:
                raise ValueError(
                    f"FeatureSpec got features[{i}] ({kind}) with keys {sorted(entry)}; expected "
                    f"'name' and only {sorted(allowed)}. How to fix: remove {unknown or 'nothing'}"
                    f"{'' if 'name' in entry else ' and add name'}."
                )
            if "keys" in entry:
                entry["keys"] = tuple(entry["keys"])
            features.append(feature_cls(**entry))
        label = config.get("label")
        return cls(features=tuple(features), label=Label(**label) if label else None)


def _check_positive(feature: Any, fields: tuple[str, ...]) -> None:
    for field in fields:
        value = getattr(feature, field, None)
        if value is None and field == "top_k":
            continue
        if field in {f.name for f in dataclasses.fields(feature)} and (
                not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise ValueError(
                f"{type(feature).__name__} {feature.name!r} got {field}={value!r}; expected an "
                "int >= 1. How to fix: set a positive integer."
            )
