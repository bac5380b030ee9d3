"""Every config loads; configs/default.yaml is the one source of defaults; a variant holds only what it overrides."""

from pathlib import Path

import pytest

from star_scorer.jobs import train
from star_scorer.paths import CONFIGS_DIR


def test_configs_all_load():
    for path in sorted(Path(CONFIGS_DIR).glob("*.yaml")):
        model_args, data_args, run_args, training_args = train.parse(["--config", str(path)])
        assert model_args.max_length <= 512 and training_args.metric_for_best_model == "combined"


def test_config_with_unknown_key_is_rejected(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("learning_rate: 1.0e-4\nlerning_rate: 2\n")
    with pytest.raises(ValueError, match=r"found unknown \['lerning_rate'\]"):
        train.parse(["--config", str(bad)])


def _yaml(path):
    import yaml

    return yaml.safe_load(Path(path).read_text()) or {}


def test_dataclass_defaults_are_the_default_config():
    """configs/default.yaml is the one source: each of our dataclasses' fields it sets has that value as its default."""
    from dataclasses import MISSING, fields

    from star_scorer.paths import PROJ_ROOT

    settings = _yaml(CONFIGS_DIR / "default.yaml")
    checked = 0
    for cls in (train.ModelArguments, train.DataArguments, train.RunArguments):
        for f in fields(cls):
            if f.name not in settings:
                continue
            default = f.default if f.default is not MISSING else f.default_factory()
            expected = settings[f.name]
            if f.name.endswith("_file"):  # paths: relative to the project in the YAML
                expected, default = (PROJ_ROOT / expected).resolve(), Path(default).resolve()
            assert default == expected, f"{cls.__name__}.{f.name}: dataclass default {default!r}, configs/default.yaml {expected!r}"
            checked += 1
    assert checked >= 20


def test_no_config_means_the_default_config_and_a_variant_holds_only_its_overrides():
    plain, with_default = train.parse([]), train.parse(["--config", str(CONFIGS_DIR / "default.yaml")])
    assert [vars(a) == vars(b) for a, b in zip(plain[:3], with_default[:3])] == [True, True, True]
    assert plain[3].num_train_epochs == with_default[3].num_train_epochs == _yaml(CONFIGS_DIR / "default.yaml")["num_train_epochs"]
    defaults = _yaml(CONFIGS_DIR / "default.yaml")
    for path in sorted(CONFIGS_DIR.glob("*.yaml")):
        if path.name == "default.yaml":
            continue
        variant = _yaml(path)
        same = sorted(k for k, v in variant.items() if defaults.get(k, object()) == v)
        assert not same, f"{path.name} repeats the default for {same}: a variant holds only what it overrides"
        model_args, *_ = train.parse(["--config", str(path)])
        assert all(getattr(model_args, k) == v for k, v in variant.items() if hasattr(model_args, k))
    gpu, *_ = train.parse(["--config", str(CONFIGS_DIR / "gpu.yaml")])
    assert gpu.head_sets == defaults["head_sets"]  # what gpu.yaml does not set comes from default.yaml


def test_bf16_trains_on_the_cpu_when_there_is_no_gpu_and_unknown_flags_are_refused():
    import torch

    from star_scorer.scorer import cpu_has_bf16

    *_, training_args = train.parse(["--bf16", "true"])
    if torch.cuda.is_available():
        assert training_args.bf16 and not training_args.use_cpu
    else:  # transformers refuses bf16 without a GPU unless use_cpu says so; emulated bf16 would be slower than fp32
        assert training_args.bf16 is training_args.use_cpu is cpu_has_bf16()
    *_, fp32 = train.parse(["--bf16", "false"])
    assert not fp32.bf16 and not fp32.use_cpu
    with pytest.raises(ValueError, match=r"found unknown \['--lerning_rate', '2'\]"):
        train.parse(["--lerning_rate", "2"])
