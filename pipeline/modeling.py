"""One encoder, two heads read in one forward pass.

- sections: the encoder reads an answer in overlapping windows; its token states
  are put back together per answer, mean-pooled per unit (a sentence, or a chunk
  of a long one) and a bidirectional GRU reads the units of the whole answer, so
  each unit is judged in the context of every other one (what came before and
  after, however far). Each token is labelled from its own state and its unit's
  context; an auxiliary loss labels the units themselves;
- result quality: pooled over the tokens the section head believes are RESULT
  (and the whole answer), an ordinal 0-4 score with cumulative logits
  (P(score > k) = sigmoid(s - b_k), ordered thresholds b_0 < ... < b_3) and four
  rubric facts T, B, NB, V as independent probabilities.

The heads can come in several sets (``head_sets``), fitted apart on the same
encoder states and averaged: an ensemble at the cost of one encoder pass.

Windows of one answer are flattened into the batch; ``answer_index`` maps each
window to its answer and ``token_pos`` each window token to its place in the
answer, so both heads see the whole answer, not one window.

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

from pipeline.features import N_UNIT_FEATURES
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
    attention_dropout: float | None = None  # the encoder's dropout on attention weights (None: its own config's)
    unit_hidden: int = 128  # GRU width per direction over the units of an answer
    unit_features: int = N_UNIT_FEATURES  # per-unit position features (pipeline.features.unit_features)
    unit_loss_weight: float = 0.5  # auxiliary unit-level section loss
    head_sets: int = 1  # independently refit copies of the heads, averaged (an ensemble over one encoder pass)
    section_class_weights: list | None = None  # None: plain cross-entropy
    quality_loss_weight: float = 1.0
    facts_loss_weight: float = 0.5
    detach_result_mask: bool = True  # quality loss does not push the section head around
    switch_penalty: float = 1.0  # decoding: log-prob cost of a new section mid-clause (calibrated on dev)
    clause_penalty: float = 0.5  # ... after a comma, semicolon, colon or dash
    sentence_penalty: float = 0.1  # ... after a sentence end
    connective_penalty: float | None = None  # ... before "and"/"so" in unpunctuated speech (None: as mid-clause)
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
    section_logits: torch.Tensor | None = None  # (answers, content tokens, labels)
    unit_logits: torch.Tensor | None = None  # (answers, units, labels)
    cum_logits: torch.Tensor | None = None  # (answers, num_scores - 1)
    facts_logits: torch.Tensor | None = None  # (answers, facts)


class StarScorerModel(nn.Module):
    def __init__(self, config: ScorerConfig) -> None:
        super().__init__()
        self.scorer_config = config
        enc_config = AutoConfig.for_model(**config.encoder)
        if config.attention_dropout is not None:
            enc_config.attention_probs_dropout_prob = config.attention_dropout
        self.encoder = AutoModel.from_config(enc_config, add_pooling_layer=False)
        use_row_dropout(self.encoder)
        self.config = self.encoder.config  # what transformers.Trainer reads (a PretrainedConfig)
        self.head_sets = nn.ModuleList(HeadSet(config, enc_config.hidden_size) for _ in range(config.head_sets))
        self.active_heads: list[int] | None = None  # head sets that forward reads (None: all); training sets them one at a time
        weights = config.section_class_weights
        n_labels = len(config.id2label)
        self.register_buffer(
            "class_weights", torch.tensor(weights, dtype=torch.float) if weights else torch.ones(n_labels), persistent=False
        )

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
        state = load_file(str(weights), device=str(device))
        expected = set(model.state_dict())
        missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
        if missing or unexpected:
            raise ValueError(
                f"expected weights for this version of the scorer in {directory}; found a different architecture "
                f"(missing {missing[:3]}, unexpected {unexpected[:3]}): retrain it with `make train`"
            )
        model.load_state_dict(state)
        return model.to(device).eval()

    # -- forward --------------------------------------------------------------
    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        answer_index: torch.Tensor,
        token_pos: torch.Tensor,
        token_unit: torch.Tensor,
        unit_features: torch.Tensor,
        labels: torch.Tensor | None = None,
        unit_labels: torch.Tensor | None = None,
        quality: torch.Tensor | None = None,
        facts: torch.Tensor | None = None,
    ) -> ScorerOutput:
        tokens = self.answer_states(input_ids, attention_mask, answer_index, token_pos, token_unit.shape)
        return self.heads(tokens, token_unit, unit_features, labels, unit_labels, quality, facts)

    def answer_states(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, answer_index: torch.Tensor, token_pos: torch.Tensor, shape
    ) -> torch.Tensor:
        """The encoder's part: (answers, content tokens, hidden) states, windows put back together."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return answer_tokens(hidden, answer_index, token_pos, shape)

    def heads(
        self,
        tokens: torch.Tensor,
        token_unit: torch.Tensor,
        unit_features: torch.Tensor,
        labels: torch.Tensor | None = None,
        unit_labels: torch.Tensor | None = None,
        quality: torch.Tensor | None = None,
        facts: torch.Tensor | None = None,
    ) -> ScorerOutput:
        """Everything after the encoder, from answer-level token states (so the heads can be refit on cached states).

        With several head sets, the answer is the mean of theirs: section and unit
        log-probabilities, the ordinal score's logits and the facts' logits; the loss is
        the mean of their losses.
        """
        active = range(len(self.head_sets)) if self.active_heads is None else self.active_heads
        outputs = [self.head_sets[k](tokens, token_unit, unit_features) for k in active]
        loss = None
        if labels is not None:
            loss = torch.stack([self.loss(out, labels, unit_labels, quality, facts) for out in outputs]).mean()
        if len(outputs) == 1:
            section_logits, unit_logits, cum_logits, facts_logits = outputs[0]
        else:
            section_logits, unit_logits = (
                torch.stack([out[i].log_softmax(-1) for out in outputs]).mean(0) for i in (0, 1)
            )
            cum_logits, facts_logits = (torch.stack([out[i] for out in outputs]).mean(0) for i in (2, 3))
        return ScorerOutput(
            loss=loss, section_logits=section_logits, unit_logits=unit_logits, cum_logits=cum_logits, facts_logits=facts_logits
        )

    def loss(self, outputs: tuple, labels, unit_labels=None, quality=None, facts=None) -> torch.Tensor:
        """One head set's training loss: sections, units, the ordinal score and the facts."""
        section_logits, unit_logits, cum_logits, facts_logits = outputs
        config = self.scorer_config
        weight = self.class_weights.to(section_logits.dtype)
        n_labels = section_logits.size(-1)
        loss = F.cross_entropy(section_logits.reshape(-1, n_labels), labels.reshape(-1), weight=weight, ignore_index=-100)
        if unit_labels is not None:
            unit_loss = F.cross_entropy(unit_logits.reshape(-1, n_labels), unit_labels.reshape(-1), weight=weight, ignore_index=-100)
            loss = loss + config.unit_loss_weight * unit_loss
        if quality is not None:
            levels = torch.arange(cum_logits.size(1), device=quality.device)
            target = (quality[:, None] > levels[None, :]).to(cum_logits.dtype)
            # summed over the thresholds (CORAL), averaged over answers
            ordinal = F.binary_cross_entropy_with_logits(cum_logits, target, reduction="none").sum(1).mean()
            loss = loss + config.quality_loss_weight * ordinal
        if facts is not None:
            loss = loss + config.facts_loss_weight * F.binary_cross_entropy_with_logits(facts_logits, facts)
        return loss


class HeadSet(nn.Module):
    """The heads over an answer's token states: unit GRU and section labels, Result quality."""

    def __init__(self, config: ScorerConfig, hidden: int) -> None:
        super().__init__()
        self.detach_result_mask = config.detach_result_mask
        n_labels = len(config.id2label)
        self.dropout = RowDropout(config.dropout)
        self.unit_proj = nn.Sequential(nn.Linear(hidden + config.unit_features, 2 * config.unit_hidden), nn.GELU())
        self.unit_rnn = nn.GRU(
            2 * config.unit_hidden, config.unit_hidden, num_layers=2, bidirectional=True, batch_first=True, dropout=config.dropout
        )
        self.unit_head = nn.Linear(2 * config.unit_hidden, n_labels)
        self.section_head = nn.Linear(hidden + 2 * config.unit_hidden, n_labels)
        self.quality_proj = nn.Sequential(nn.Linear(2 * hidden + 2, hidden), nn.GELU(), nn.Dropout(config.dropout))
        # the ordinal score reads the pooled answer and the fact probabilities: the
        # rubric is monotone in T, B, NB, so one direction over them orders 0-4 well
        self.score_head = nn.Linear(hidden + len(config.facts), 1)
        # b_0 and the log-gaps of the following thresholds: ordered by construction
        self.threshold_base = nn.Parameter(torch.tensor(-1.5))
        self.threshold_gaps = nn.Parameter(torch.zeros(config.num_scores - 2))
        self.facts_head = nn.Linear(hidden, len(config.facts))
        for module in (self.section_head, self.unit_head, self.unit_proj[0], self.quality_proj[0], self.score_head, self.facts_head):
            nn.init.normal_(module.weight, std=0.02)
            nn.init.zeros_(module.bias)

    def thresholds(self) -> torch.Tensor:
        gaps = F.softplus(self.threshold_gaps) + 1e-3
        return torch.cat([self.threshold_base.view(1), self.threshold_base + torch.cumsum(gaps, 0)])

    def forward(self, tokens: torch.Tensor, token_unit: torch.Tensor, unit_features: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(section logits, unit logits, cumulative score logits, fact logits)."""
        token_mask = (token_unit >= 0).to(tokens.dtype)

        # units: mean of their tokens, read in order by a GRU over the whole answer
        units = pool_by_index(tokens, token_unit, unit_features.size(1))
        n_units = (token_unit.max(1).values + 1).clamp(min=1)
        unit_in = self.unit_proj(self.dropout(torch.cat([units, unit_features.to(units.dtype)], -1)))
        packed = nn.utils.rnn.pack_padded_sequence(unit_in, n_units.cpu(), batch_first=True, enforce_sorted=False)
        unit_ctx, _ = self.unit_rnn(packed)
        unit_ctx, _ = nn.utils.rnn.pad_packed_sequence(unit_ctx, batch_first=True, total_length=unit_in.size(1))
        unit_logits = self.unit_head(self.dropout(unit_ctx))
        token_ctx = torch.gather(unit_ctx, 1, token_unit.clamp(min=0)[..., None].expand(-1, -1, unit_ctx.size(-1)))
        section_logits = self.section_head(self.dropout(torch.cat([tokens, token_ctx], -1)))

        p_result = section_logits.softmax(-1)[..., RESULT_ID] * token_mask
        if self.detach_result_mask:
            p_result = p_result.detach()
        result_mass = p_result.sum(1)
        token_count = token_mask.sum(1).clamp(min=1.0)
        result_pooled = torch.einsum("at,ath->ah", p_result, tokens) / (result_mass[:, None] + 1e-4)
        mean_pooled = torch.einsum("at,ath->ah", token_mask, tokens) / token_count[:, None]
        feats = torch.cat(
            [result_pooled, mean_pooled, torch.log1p(result_mass)[:, None], (result_mass / token_count)[:, None]], -1
        )
        z = self.quality_proj(self.dropout(feats))
        facts_logits = self.facts_head(z)
        score = self.score_head(torch.cat([z, torch.sigmoid(facts_logits)], -1))
        cum_logits = score - self.thresholds()[None, :]
        return section_logits, unit_logits, cum_logits, facts_logits


class RowDropout(nn.Module):
    """Dropout whose masks are rows of a small bank drawn afresh at each call.

    Each row of ``x`` (a token, a unit) is multiplied by one of ``bank_rows`` random
    masks over the last dimension, scaled by 1/(1-p) as in ``nn.Dropout``. On CPU,
    drawing one random number per element made dropout a third of a fine-tuning
    step and half of a head-refit step; the bank draws a few hundred rows instead.
    """

    def __init__(self, p: float, bank_rows: int = 256) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"expected a dropout probability in [0, 1), found {p}")
        self.p = p
        self.bank_rows = bank_rows

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return row_dropout(x, self.p, self.training, self.bank_rows)

    def extra_repr(self) -> str:
        return f"p={self.p}, bank_rows={self.bank_rows}"


def row_dropout(x: torch.Tensor, p: float, training: bool = True, bank_rows: int = 256) -> torch.Tensor:
    """The function behind ``RowDropout``."""
    if not training or p == 0.0:
        return x
    bank = (torch.rand(bank_rows, x.size(-1), device=x.device) >= p).to(x.dtype) / (1.0 - p)
    return x * bank[torch.randint(0, bank_rows, x.shape[:-1], device=x.device)]


def use_row_dropout(module: nn.Module) -> int:
    """Swap every ``nn.Dropout`` applied to states for a ``RowDropout`` with the same p.

    Attention modules keep theirs: the attention kernels read only its ``p``.
    Returns how many were swapped.
    """
    swapped = 0
    for parent in module.modules():
        if "attention" in type(parent).__name__.lower() and "output" not in type(parent).__name__.lower():
            continue
        for name, child in parent.named_children():
            if type(child) is nn.Dropout:
                setattr(parent, name, RowDropout(child.p))
                swapped += 1
    return swapped


def answer_tokens(hidden: torch.Tensor, answer_index: torch.Tensor, token_pos: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """(windows, window tokens, hidden) -> (answers, content tokens, hidden): a token seen by
    two overlapping windows gets the mean of both states; [CLS], [SEP] and padding are dropped."""
    n_answers, n_tokens = shape
    keep = token_pos >= 0
    flat = (answer_index[:, None] * n_tokens + token_pos)[keep]
    return scatter_mean(hidden[keep], flat, n_answers * n_tokens).view(n_answers, n_tokens, -1)


def pool_by_index(tokens: torch.Tensor, index: torch.Tensor, n_groups: int) -> torch.Tensor:
    """Mean of each answer's tokens per group (index -1: no group) -> (answers, groups, hidden)."""
    n_answers = tokens.size(0)
    keep = index >= 0
    flat = (torch.arange(n_answers, device=index.device)[:, None] * n_groups + index)[keep]
    return scatter_mean(tokens[keep], flat, n_answers * n_groups).view(n_answers, n_groups, -1)


def scatter_mean(values: torch.Tensor, index: torch.Tensor, size: int) -> torch.Tensor:
    """(n, hidden) rows averaged into ``size`` slots by ``index``; empty slots are zero."""
    total = values.new_zeros((size, values.size(-1))).index_add_(0, index, values)
    count = values.new_zeros(size).index_add_(0, index, values.new_ones(index.numel()))
    return total / count.clamp(min=1.0)[:, None]


def section_labels(config: ScorerConfig) -> list[str]:
    """The model's label order, read back from its saved config."""
    labels = config.labels
    if set(labels) != set(SECTION_LABELS):
        raise ValueError(f"expected a model over {list(SECTION_LABELS)}, found labels {labels}")
    return labels
