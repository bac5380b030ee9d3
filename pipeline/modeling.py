"""One encoder, two heads read in one forward pass.

- sections: token classification over SECTION_LABELS;
- result quality: pooled over the tokens the section head believes are RESULT
  (and the whole answer), an ordinal 0-4 score with cumulative logits
  (P(score > k) = sigmoid(s - b_k), ordered thresholds b_0 < ... < b_3) and four
  rubric facts T, B, NB, V as independent probabilities.

Windows of one answer are flattened into the batch; ``answer_index`` maps each
window to its answer so the quality head pools across all of an answer's windows.

Saved as ``model.safetensors`` + ``scorer_config.json`` (+ the tokenizer files):
loading reads tensors and JSON only, never pickled code.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoConfig, AutoModel
from transformers.utils import ModelOutput

from pipeline.labels import FACTS, ID2LABEL, LABEL2ID, NUM_SCORES, SECTION_LABELS

logger = logging.getLogger(__name__)

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "scorer_config.json"
RESULT_ID = LABEL2ID["RESULT"]


@dataclass
class ScorerConfig:
    """Everything needed to rebuild the model, saved beside its weights."""

    encoder: dict = field(default_factory=dict)  # the encoder's own config (config.to_dict())
    id2label: dict = field(default_factory=lambda: {str(k): v for k, v in ID2LABEL.items()})
    facts: list = field(default_factory=lambda: list(FACTS))
    num_scores: int = NUM_SCORES
    max_length: int = 512  # encoder window in tokens, [CLS] and [SEP] included
    stride: int = 128  # overlap between windows: every token sees >= 64 tokens of context
    dropout: float = 0.1
    section_class_weights: list | None = None  # None: plain cross-entropy
    quality_loss_weight: float = 1.0
    facts_loss_weight: float = 0.5
    detach_result_mask: bool = True  # quality loss does not push the section head around
    switch_penalty: float = 1.0  # decoding: log-prob cost of a new section mid-clause (calibrated on dev)
    clause_penalty: float = 0.5  # ... after a comma, semicolon, colon or dash
    sentence_penalty: float = 0.1  # ... after a sentence end
    score_rule: str = "median"  # decoding: median | argmax of the ordinal distribution, or facts -> rubric (picked on dev)
    label_bias: dict = field(default_factory=dict)  # decoding: log-prior offsets per label, e.g. for rare TASK (calibrated on dev)
    base_model: str = ""  # where the encoder weights came from, for the record
    training: dict = field(default_factory=dict)  # resolved run config, for the record

    @property
    def label2id(self) -> dict[str, int]:
        return {v: int(k) for k, v in self.id2label.items()}

    @property
    def labels(self) -> list[str]:
        return [self.id2label[str(i)] for i in range(len(self.id2label))]

    def save(self, directory: Path) -> None:
        (Path(directory) / CONFIG_NAME).write_text(json.dumps(asdict(self), indent=2, default=str))

    @classmethod
    def load(cls, directory: Path) -> ScorerConfig:
        path = Path(directory) / CONFIG_NAME
        if not path.exists():
            raise FileNotFoundError(f"expected a trained model folder with {CONFIG_NAME}, found none in {directory}")
        return cls(**json.loads(path.read_text()))


@dataclass
class ScorerOutput(ModelOutput):
    loss: torch.Tensor | None = None
    section_logits: torch.Tensor | None = None  # (windows, tokens, labels)
    cum_logits: torch.Tensor | None = None  # (answers, num_scores - 1)
    facts_logits: torch.Tensor | None = None  # (answers, facts)


class StarScorerModel(nn.Module):
    def __init__(self, config: ScorerConfig) -> None:
        super().__init__()
        self.scorer_config = config
        enc_config = AutoConfig.for_model(**config.encoder)
        self.encoder = AutoModel.from_config(enc_config, add_pooling_layer=False)
        self.config = self.encoder.config  # what transformers.Trainer reads (a PretrainedConfig)
        hidden = enc_config.hidden_size
        n_labels = len(config.id2label)
        self.dropout = nn.Dropout(config.dropout)
        self.section_head = nn.Linear(hidden, n_labels)
        self.quality_proj = nn.Sequential(nn.Linear(2 * hidden + 2, hidden), nn.GELU(), nn.Dropout(config.dropout))
        # the ordinal score reads the pooled answer and the fact probabilities: the
        # rubric is monotone in T, B, NB, so one direction over them orders 0-4 well
        self.score_head = nn.Linear(hidden + len(config.facts), 1)
        # b_0 and the log-gaps of the following thresholds: ordered by construction
        self.threshold_base = nn.Parameter(torch.tensor(-1.5))
        self.threshold_gaps = nn.Parameter(torch.zeros(config.num_scores - 2))
        self.facts_head = nn.Linear(hidden, len(config.facts))
        weights = config.section_class_weights
        self.register_buffer(
            "class_weights", torch.tensor(weights, dtype=torch.float) if weights else torch.ones(n_labels), persistent=False
        )
        for module in (self.section_head, self.quality_proj[0], self.score_head, self.facts_head):
            nn.init.normal_(module.weight, std=0.02)
            nn.init.zeros_(module.bias)

    # -- construction -------------------------------------------------------
    @classmethod
    def from_encoder(cls, encoder_path: str, config: ScorerConfig, local_files_only: bool = True) -> StarScorerModel:
        """A new scorer whose encoder starts from pretrained weights (heads random)."""
        enc = AutoModel.from_pretrained(encoder_path, local_files_only=local_files_only, add_pooling_layer=False)
        config.encoder = enc.config.to_dict()
        model = cls(config)
        missing, unexpected = model.encoder.load_state_dict(enc.state_dict(), strict=False)
        if missing:
            raise ValueError(f"encoder weights at {encoder_path} lack {missing[:5]}")
        return model

    def save_pretrained(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        save_file(state, str(directory / WEIGHTS_NAME), metadata={"format": "pt"})
        self.scorer_config.save(directory)

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str | torch.device = "cpu") -> StarScorerModel:
        directory = Path(directory)
        config = ScorerConfig.load(directory)
        model = cls(config)
        weights = directory / WEIGHTS_NAME
        if not weights.exists():
            raise FileNotFoundError(f"expected weights at {weights}, found none")
        model.load_state_dict(load_file(str(weights), device=str(device)))
        return model.to(device).eval()

    # -- forward --------------------------------------------------------------
    def thresholds(self) -> torch.Tensor:
        gaps = F.softplus(self.threshold_gaps) + 1e-3
        return torch.cat([self.threshold_base.view(1), self.threshold_base + torch.cumsum(gaps, 0)])

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        answer_index: torch.Tensor,
        content_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        quality: torch.Tensor | None = None,
        facts: torch.Tensor | None = None,
    ) -> ScorerOutput:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        section_logits = self.section_head(self.dropout(hidden))

        if content_mask is None:
            content_mask = attention_mask
        mask = content_mask.to(hidden.dtype)
        p_result = section_logits.softmax(-1)[..., RESULT_ID] * mask
        if self.scorer_config.detach_result_mask:
            p_result = p_result.detach()
        n_answers = int(answer_index.max().item()) + 1

        def per_answer(x: torch.Tensor) -> torch.Tensor:  # (windows, ...) -> (answers, ...)
            out = x.new_zeros((n_answers, *x.shape[1:]))
            return out.index_add_(0, answer_index, x)

        result_mass = per_answer(p_result.sum(1))
        token_count = per_answer(mask.sum(1)).clamp(min=1.0)
        result_pooled = per_answer(torch.einsum("wt,wth->wh", p_result, hidden)) / (result_mass[:, None] + 1e-4)
        mean_pooled = per_answer(torch.einsum("wt,wth->wh", mask, hidden)) / token_count[:, None]
        feats = torch.cat(
            [result_pooled, mean_pooled, torch.log1p(result_mass)[:, None], (result_mass / token_count)[:, None]], -1
        )
        z = self.quality_proj(self.dropout(feats))
        facts_logits = self.facts_head(z)
        score = self.score_head(torch.cat([z, torch.sigmoid(facts_logits)], -1))
        cum_logits = score - self.thresholds()[None, :]

        loss = None
        if labels is not None:
            loss = F.cross_entropy(
                section_logits.reshape(-1, section_logits.size(-1)),
                labels.reshape(-1),
                weight=self.class_weights.to(section_logits.dtype),
                ignore_index=-100,
            )
            if quality is not None:
                levels = torch.arange(cum_logits.size(1), device=quality.device)
                target = (quality[:, None] > levels[None, :]).to(cum_logits.dtype)
                # summed over the thresholds (CORAL), averaged over answers
                ordinal = F.binary_cross_entropy_with_logits(cum_logits, target, reduction="none").sum(1).mean()
                loss = loss + self.scorer_config.quality_loss_weight * ordinal
            if facts is not None:
                loss = loss + self.scorer_config.facts_loss_weight * F.binary_cross_entropy_with_logits(facts_logits, facts)
        return ScorerOutput(loss=loss, section_logits=section_logits, cum_logits=cum_logits, facts_logits=facts_logits)


def section_labels(config: ScorerConfig) -> list[str]:
    """The model's label order, read back from its saved config."""
    labels = config.labels
    if set(labels) != set(SECTION_LABELS):
        raise ValueError(f"expected a model over {list(SECTION_LABELS)}, found labels {labels}")
    return labels
