"""One encoder, two heads read in one forward pass.

- sections: the encoder reads an answer in overlapping windows; its token states
  are put back together per answer, mean-pooled per unit (a sentence, or a chunk
  of a long one) and a bidirectional GRU reads the units of the whole answer, so
  each unit is judged in the context of every other one (what came before and
  after, however far). Each token is labelled from its own state and its unit's
  context; an auxiliary loss labels the units themselves;
- result facts: each clause (features.clause_spans) gets the four rubric facts
  T, B, NB, V as independent probabilities, from its own tokens' states and flags
  for numbers in any form. A fact is a property of the clause that carries it
  (LABELING.md: its evidence), so an answer's fact is the best of its RESULT
  clauses (decided after decoding, over the clauses labelled RESULT) and the 0-4
  score follows from the facts by the rubric: padding a Result with more words
  adds clauses, not evidence. Trained per clause where the data names the
  evidence, and through the max over gold RESULT clauses for every answer;
- failure steps (``step_loss_weight`` > 0): each clause gets detection, diagnosis,
  mitigation and prevention from the same clause inputs, trained where the data marks
  steps, so that fine-tuning teaches the encoder what tells the steps apart.

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

from star_scorer.features import N_CLAUSE_FEATURES, N_UNIT_FEATURES
from star_scorer.labels import FACTS, FAILURE_STEPS, ID2LABEL, SECTION_LABELS

logger = logging.getLogger(__name__)

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "scorer_config.json"


@dataclass
class ScorerConfig:
    """Everything needed to rebuild the model, saved beside its weights."""

    encoder: dict = field(default_factory=dict)  # the encoder's own config (config.to_dict())
    id2label: dict = field(default_factory=lambda: {str(k): v for k, v in ID2LABEL.items()})
    facts: list = field(default_factory=lambda: list(FACTS))
    max_length: int = 512  # encoder window in tokens, [CLS] and [SEP] included
    stride: int = 128  # overlap between windows: every token sees >= 64 tokens of context
    windows: str = "fixed"  # how long answers are cut (features.window_ranges): models saved before "balanced" read "fixed"
    dropout: float = 0.1
    attention_dropout: float | None = None  # the encoder's dropout on attention weights (None: its own config's)
    unit_hidden: int = 128  # GRU width per direction over the units of an answer
    units: str = "sentences"  # what the unit GRU reads: "sentences" (long ones chunked) or "clauses" (features.clause_spans)
    unit_features: int = N_UNIT_FEATURES  # per-unit position features (star_scorer.features.unit_features)
    clause_features: int = N_CLAUSE_FEATURES  # per-clause number flags (star_scorer.features.clause_features)
    unit_loss_weight: float = 0.5  # auxiliary unit-level section loss
    head_sets: int = 1  # independently refit copies of the heads, averaged (an ensemble over one encoder pass)
    section_class_weights: list | None = None  # None: plain cross-entropy
    facts_loss_weight: float = 0.5  # clause-level and answer-level fact losses, beside the section loss
    step_loss_weight: float = 0.0  # clause-level failure-step loss (detection, diagnosis, mitigation, prevention) where the data
    # marks steps, so the encoder learns what tells them apart; 0: no step head (models saved before it load unchanged)
    switch_penalty: float = 1.0  # decoding: log-prob cost of a new section mid-clause (calibrated on dev)
    clause_penalty: float = 0.5  # ... after a comma, semicolon, colon or dash
    sentence_penalty: float = 0.1  # ... after a sentence end
    connective_penalty: float | None = None  # ... before "and"/"so" in unpunctuated speech (None: as mid-clause)
    opener_penalty: float | None = None  # ... before a clause-opening "and"/"which"/"but"/... anywhere (None: as mid-clause)
    result_reach: float | None = None  # decoding: in an answer whose best path has no RESULT, the clauses this sure of
    # RESULT (their words' mean probability) are its Result (None: the path alone; calibrated with the score's offsets)
    evidence_extend: float = 0.5  # decoding: a fact's evidence takes in neighbouring RESULT clauses of its sentence this sure of it
    fact_bias: dict = field(default_factory=dict)  # decoding: logit offsets per fact, so p >= 0.5 is the F1-best threshold on dev (calibrated)
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
    clause_logits: torch.Tensor | None = None  # (answers, clauses, facts)
    step_logits: torch.Tensor | None = None  # (answers, clauses, failure steps), when the model has a step head


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
        token_clause: torch.Tensor,
        clause_features: torch.Tensor,
        labels: torch.Tensor | None = None,
        unit_labels: torch.Tensor | None = None,
        clause_result: torch.Tensor | None = None,
        clause_facts: torch.Tensor | None = None,
        facts: torch.Tensor | None = None,
        clause_steps: torch.Tensor | None = None,
    ) -> ScorerOutput:
        tokens = self.answer_states(input_ids, attention_mask, answer_index, token_pos, token_unit.shape)
        return self.heads(tokens, token_unit, unit_features, token_clause, clause_features,
                          labels, unit_labels, clause_result, clause_facts, facts, clause_steps)

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
        token_clause: torch.Tensor,
        clause_features: torch.Tensor,
        labels: torch.Tensor | None = None,
        unit_labels: torch.Tensor | None = None,
        clause_result: torch.Tensor | None = None,
        clause_facts: torch.Tensor | None = None,
        facts: torch.Tensor | None = None,
        clause_steps: torch.Tensor | None = None,
    ) -> ScorerOutput:
        """Everything after the encoder, from answer-level token states (so the heads can be refit on cached states).

        With several head sets, the answer is the mean of theirs: section and unit
        log-probabilities and the clauses' fact logits; the loss is the mean of their losses.
        """
        active = range(len(self.head_sets)) if self.active_heads is None else self.active_heads
        outputs = [self.head_sets[k](tokens, token_unit, unit_features, token_clause, clause_features) for k in active]
        loss = None
        if labels is not None:
            loss = torch.stack([self.loss(out, labels, unit_labels, clause_result, clause_facts, facts, clause_steps)
                                for out in outputs]).mean()
        if len(outputs) == 1:
            section_logits, unit_logits, clause_logits, step_logits = outputs[0]
        else:
            section_logits, unit_logits = (
                torch.stack([out[i].log_softmax(-1) for out in outputs]).mean(0) for i in (0, 1)
            )
            clause_logits = torch.stack([out[2] for out in outputs]).mean(0)
            step_logits = torch.stack([out[3] for out in outputs]).mean(0) if outputs[0][3] is not None else None
        return ScorerOutput(loss=loss, section_logits=section_logits, unit_logits=unit_logits, clause_logits=clause_logits,
                            step_logits=step_logits)

    def loss(self, outputs: tuple, labels, unit_labels=None, clause_result=None, clause_facts=None, facts=None,
             clause_steps=None) -> torch.Tensor:
        """One head set's training loss: sections, units, the facts per clause and per answer, and the failure steps.

        Per clause: binary cross-entropy where the target is known (``clause_facts`` >= 0).
        Per answer: the answer's facts against the max of its gold RESULT clauses' logits
        (answers without a RESULT have no facts to learn there). Steps: binary cross-entropy per
        clause of the answers annotated for steps (``clause_steps`` >= 0), when the model has a step head.
        """
        section_logits, unit_logits, clause_logits, step_logits = outputs
        config = self.scorer_config
        weight = self.class_weights.to(section_logits.dtype)
        n_labels = section_logits.size(-1)
        loss = F.cross_entropy(section_logits.reshape(-1, n_labels), labels.reshape(-1), weight=weight, ignore_index=-100)
        if unit_labels is not None:
            unit_loss = F.cross_entropy(unit_logits.reshape(-1, n_labels), unit_labels.reshape(-1), weight=weight, ignore_index=-100)
            loss = loss + config.unit_loss_weight * unit_loss
        if clause_facts is not None:
            known = clause_facts >= 0
            if known.any():
                per_clause = F.binary_cross_entropy_with_logits(clause_logits[known], clause_facts[known])
                loss = loss + config.facts_loss_weight * per_clause
        if facts is not None and clause_result is not None:
            has_result = clause_result.bool().any(1)
            if has_result.any():
                masked = clause_logits.masked_fill(~clause_result.bool()[..., None], -1e4)
                best = masked.max(1).values[has_result]
                loss = loss + config.facts_loss_weight * F.binary_cross_entropy_with_logits(best, facts[has_result])
        if step_logits is not None and clause_steps is not None:
            targets = clause_steps[:, : step_logits.size(1)]
            known = targets >= 0
            if known.any():
                loss = loss + config.step_loss_weight * F.binary_cross_entropy_with_logits(step_logits[known], targets[known])
        return loss


class HeadSet(nn.Module):
    """The heads over an answer's token states: unit GRU and section labels; the clauses' rubric facts."""

    def __init__(self, config: ScorerConfig, hidden: int) -> None:
        super().__init__()
        n_labels = len(config.id2label)
        self.dropout = RowDropout(config.dropout)
        self.unit_proj = nn.Sequential(nn.Linear(hidden + config.unit_features, 2 * config.unit_hidden), nn.GELU())
        self.unit_rnn = nn.GRU(
            2 * config.unit_hidden, config.unit_hidden, num_layers=2, bidirectional=True, batch_first=True, dropout=config.dropout
        )
        self.unit_head = nn.Linear(2 * config.unit_hidden, n_labels)
        self.section_head = nn.Linear(hidden + 2 * config.unit_hidden, n_labels)
        # a clause's facts from its own tokens (mean and max) and its number flags: nothing about
        # the rest of the Result, so a fact cannot be read off the Result's length
        self.clause_proj = nn.Sequential(nn.Linear(2 * hidden + config.clause_features, hidden), nn.GELU())
        self.clause_head = nn.Linear(hidden, len(config.facts))
        modules = [self.section_head, self.unit_head, self.unit_proj[0], self.clause_proj[0], self.clause_head]
        self.step_head = None
        if config.step_loss_weight > 0:  # the failure steps of a clause, from the same inputs as its facts, apart from them
            self.step_head = nn.Sequential(nn.Linear(2 * hidden + config.clause_features, hidden), nn.GELU(),
                                           nn.Linear(hidden, len(FAILURE_STEPS)))
            modules += [self.step_head[0], self.step_head[2]]
        for module in modules:
            nn.init.normal_(module.weight, std=0.02)
            nn.init.zeros_(module.bias)

    def forward(
        self, tokens: torch.Tensor, token_unit: torch.Tensor, unit_features: torch.Tensor,
        token_clause: torch.Tensor, clause_features: torch.Tensor,
    ) -> tuple[torch.Tensor, ...]:
        """(section logits, unit logits, clause fact logits, clause step logits or None)."""
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

        n_clauses = clause_features.size(1)
        clause_mean = pool_by_index(tokens, token_clause, n_clauses)
        clause_max = max_by_index(tokens, token_clause, n_clauses)
        clause_in = torch.cat([clause_mean, clause_max, clause_features.to(tokens.dtype)], -1)
        clause_logits = self.clause_head(self.dropout(self.clause_proj(self.dropout(clause_in))))
        step_logits = self.step_head(self.dropout(clause_in)) if self.step_head is not None else None
        return section_logits, unit_logits, clause_logits, step_logits


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


def max_by_index(tokens: torch.Tensor, index: torch.Tensor, n_groups: int) -> torch.Tensor:
    """Element-wise max of each answer's tokens per group (index -1: no group; empty groups 0) -> (answers, groups, hidden)."""
    n_answers, _, hidden = tokens.shape
    keep = index >= 0
    flat = (torch.arange(n_answers, device=index.device)[:, None] * n_groups + index)[keep]
    out = tokens.new_full((n_answers * n_groups, hidden), float("-inf"))
    out = out.scatter_reduce(0, flat[:, None].expand(-1, hidden), tokens[keep], reduce="amax", include_self=True)
    return out.masked_fill(torch.isinf(out), 0.0).view(n_answers, n_groups, hidden)


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
