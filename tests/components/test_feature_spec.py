import pytest

from components.feature_spec import (
    Bucketized, Crossed, Embedding, FeatureSpec, Hashed, Label, Numeric, Vocabulary,
)


def _spec():
    return FeatureSpec(features=(
        Numeric("fare"), Bucketized("lat", num_buckets=4), Vocabulary("pay", top_k=5, num_oov_buckets=2),
        Hashed("company", hash_bucket_size=10), Crossed("x", keys=("a", "b"), hash_bucket_size=7),
        Embedding("pay_emb", source="pay", dimension=3)), label=Label("y", expression="t > 0.2 * fare"))


def test_round_trip_and_derived_views():
    spec = _spec()
    config = spec.to_config()
    assert config["features"][4] == {"type": "crossed", "name": "x", "keys": ["a", "b"], "hash_bucket_size": 7}
    assert config["label"] == {"name": "y", "expression": "t > 0.2 * fare"}
    assert FeatureSpec.from_config(config) == spec
    assert spec.raw_columns == ["fare", "lat", "pay", "company", "a", "b"]
    assert spec.column_types() == {"fare": "float", "lat": "float"}
    regression = FeatureSpec(features=(Numeric("miles"),), label=Label("fare", dtype="float"))
    assert regression.to_config()["label"] == {"name": "fare", "dtype": "float"}
    assert FeatureSpec.from_config(regression.to_config()) == regression


@pytest.mark.parametrize("config, message", [
    ({"features": [{"type": "vocab", "name": "a"}]}, r"features\[0\].type='vocab'; expected one of"),
    ({"features": [{"type": "numeric", "name": "a", "bins": 3}]}, r"features\[0\] \(numeric\) with keys"),
    ({"features": [{"type": "numeric"}]}, r"expected 'name'"),
])
def test_from_config_errors_name_the_entry(config, message):
    with pytest.raises(ValueError, match=message):
        FeatureSpec.from_config(config)


def test_validation_errors():
    with pytest.raises(ValueError, match="two features named 'a'"):
        FeatureSpec(features=(Numeric("a"), Numeric("a")))
    with pytest.raises(ValueError, match=r"Bucketized 'a' got num_buckets=0; expected an int >= 1"):
        FeatureSpec(features=(Bucketized("a", num_buckets=0),))
    with pytest.raises(ValueError, match="got num_oov_buckets=-1; expected >= 0"):
        FeatureSpec(features=(Vocabulary("a", num_oov_buckets=-1),))
    with pytest.raises(ValueError, match="Crossed 'x' got keys=.*expected at least two"):
        FeatureSpec(features=(Crossed("x", keys=("a",)),))
    with pytest.raises(ValueError, match="Embedding 'e' got source='fare'; expected the name of a categorical"):
        FeatureSpec(features=(Numeric("fare"), Embedding("e", source="fare")))
    with pytest.raises(ValueError, match="label='a', which is also a feature"):
        FeatureSpec(features=(Numeric("a"),), label=Label("a"))
    with pytest.raises(ValueError, match="label='a', which a crossed feature reads"):
        FeatureSpec(features=(Crossed("x", keys=("a", "b")),), label=Label("a"))
    with pytest.raises(ValueError, match="label 'y' with dtype='double'; expected one of \\['int', 'float', 'string'\\]"):
        FeatureSpec(features=(Numeric("a"),), label=Label("y", dtype="double"))
    with pytest.raises(TypeError, match="FeatureSpec got feature='a'"):
        FeatureSpec(features=("a",))
