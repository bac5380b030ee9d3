import pytest

from star_scorer.base_model import DEFAULT_BASE_MODEL, resolve_base_model


def test_default_base_model_resolves_offline_and_verified():
    path, local_only = resolve_base_model(DEFAULT_BASE_MODEL)
    assert local_only and path.endswith("model")


def test_hub_id_needs_offline_off():
    with pytest.raises(FileNotFoundError, match="set offline: false"):
        resolve_base_model("someone/some-model", offline=True)
