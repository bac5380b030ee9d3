"""What kind of story an answer tells: story type, competency and the failure steps it shows (issue 17).

Small heads read the fine-tuned encoder's states of an answer (the same forward pass
that labels sections and facts):

- the answer, as the mean and max of its content tokens' states -> story type
  (success, failure, lesson) and competency (labels.COMPETENCIES), softmax each;
- each clause (features.clause_spans), as the mean and max of its tokens' states, its
  number flags and the answer's vector -> the four failure steps (labels.FAILURE_STEPS)
  as independent probabilities. A step is shown where a clause says it (the data's
  step spans, data/briefs/steps-2026-12.md), as a Result fact is shown by its clause.

Fitted after fine-tuning on the encoder's states of the training answers
(``star_scorer.jobs.fit_story``) and saved beside the model as ``story_heads.safetensors``
and ``story_heads.json``; a model folder without them scores as before.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from star_scorer.labels import COMPETENCIES, FAILURE_STEPS, STORY_TYPES
from star_scorer.modeling import max_by_index, pool_by_index

WEIGHTS = "story_heads.safetensors"
CONFIG = "story_heads.json"


def answer_vectors(tokens: torch.Tensor, token_unit: torch.Tensor) -> torch.Tensor:
    """(answers, tokens, hidden) -> (answers, 2 * hidden): mean and max over the answer's content tokens."""
    index = torch.where(token_unit >= 0, 0, -1)
    return torch.cat([pool_by_index(tokens, index, 1), max_by_index(tokens, index, 1)], -1)[:, 0]


def clause_vectors(tokens: torch.Tensor, token_clause: torch.Tensor, clause_features: torch.Tensor) -> torch.Tensor:
    """(answers, clauses, 2 * hidden + clause features): each clause's mean and max token states and its flags."""
    n = clause_features.size(1)
    return torch.cat([pool_by_index(tokens, token_clause, n), max_by_index(tokens, token_clause, n),
                      clause_features.to(tokens.dtype)], -1)


class StoryHeads(nn.Module):
    def __init__(self, hidden: int, n_clause_features: int, inner: int = 128, dropout: float = 0.1) -> None:
        super().__init__()
        self.dims = {"hidden": hidden, "n_clause_features": n_clause_features, "inner": inner, "dropout": dropout}
        self.answer = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * hidden, inner), nn.GELU(), nn.Dropout(dropout))
        self.story = nn.Linear(inner, len(STORY_TYPES))
        self.competency = nn.Linear(inner, len(COMPETENCIES))
        self.clause = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * hidden + n_clause_features + inner, inner), nn.GELU(),
                                    nn.Dropout(dropout), nn.Linear(inner, len(FAILURE_STEPS)))

    def forward(self, answer: torch.Tensor, clauses: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(story logits (A, 3), competency logits (A, 12), step logits (A, clauses, 4))."""
        a = self.answer(answer)
        context = a[:, None, :].expand(-1, clauses.size(1), -1)
        return self.story(a), self.competency(a), self.clause(torch.cat([clauses, context], -1))

    def from_states(self, tokens: torch.Tensor, token_unit: torch.Tensor, token_clause: torch.Tensor, clause_features: torch.Tensor):
        return self(answer_vectors(tokens, token_unit), clause_vectors(tokens, token_clause, clause_features))

    def save(self, directory: Path, extra: dict | None = None) -> None:
        save_file({k: v.contiguous() for k, v in self.state_dict().items()}, str(Path(directory) / WEIGHTS))
        config = self.dims | {"story_types": list(STORY_TYPES), "competencies": list(COMPETENCIES), "steps": list(FAILURE_STEPS)}
        (Path(directory) / CONFIG).write_text(json.dumps(config | (extra or {}), indent=2))

    @classmethod
    def load(cls, directory: Path) -> StoryHeads | None:
        """The heads saved in ``directory``, or None when it has none."""
        directory = Path(directory)
        if not (directory / WEIGHTS).exists():
            return None
        config = json.loads((directory / CONFIG).read_text())
        if config["story_types"] != list(STORY_TYPES) or config["competencies"] != list(COMPETENCIES) or config["steps"] != list(FAILURE_STEPS):
            raise ValueError(f"{directory / CONFIG}: expected heads over this library's story types, competencies and steps, "
                             f"found {config['story_types']}, {config['competencies']}, {config['steps']}")
        heads = cls(config["hidden"], config["n_clause_features"], config["inner"], config["dropout"])
        heads.load_state_dict(load_file(str(directory / WEIGHTS)))
        return heads.eval()


def clause_step_targets(step_spans: dict[str, list[tuple[int, int]]] | None, clauses: list[tuple[int, int]]) -> list[list[float]]:
    """Per clause, 1.0 for each step whose span covers at least half of the clause or of the span; -1 when the answer
    was not annotated for steps (no loss)."""
    if step_spans is None:
        return [[-1.0] * len(FAILURE_STEPS) for _ in clauses]
    out = []
    for a, b in clauses:
        row = []
        for step in FAILURE_STEPS:
            hit = 0.0
            for s, e in step_spans.get(step, []):
                overlap = min(b, e) - max(a, s)
                if overlap > 0 and overlap >= 0.5 * min(b - a, e - s):
                    hit = 1.0
            row.append(hit)
        out.append(row)
    return out


def decode_story(text: str, clauses: list[tuple[int, int]], story_logits, competency_logits, step_logits) -> dict:
    """The row's ``story``: type and competencies with probabilities, and each failure step with the clauses that show it."""
    story = torch.as_tensor(story_logits).float().softmax(-1).tolist()
    competency = torch.as_tensor(competency_logits).float().softmax(-1).tolist()
    steps_p = torch.as_tensor(step_logits).float().sigmoid()[: len(clauses)]
    steps = {}
    for k, step in enumerate(FAILURE_STEPS):
        probs = steps_p[:, k].tolist() if len(clauses) else []
        spans = [{"start": a, "end": b, "text": text[a:b], "probability": round(p, 4)} for (a, b), p in zip(clauses, probs) if p >= 0.5]
        steps[step] = {"present": bool(spans), "probability": round(max(probs, default=0.0), 4), "spans": _merge(spans, text)}
    best = max(range(len(STORY_TYPES)), key=story.__getitem__)
    ranked = sorted(range(len(COMPETENCIES)), key=lambda i: -competency[i])
    return {
        "story_type": STORY_TYPES[best],
        "story_type_probabilities": {name: round(p, 4) for name, p in zip(STORY_TYPES, story)},
        "competencies": {COMPETENCIES[i]: round(competency[i], 4) for i in ranked},
        "failure_steps": steps,
    }


def _merge(spans: list[dict], text: str) -> list[dict]:
    """Adjacent clauses of one step joined into one span (only whitespace between them)."""
    out: list[dict] = []
    for span in spans:
        if out and not text[out[-1]["end"]:span["start"]].strip():
            last = out[-1]
            last.update(end=span["end"], text=text[last["start"]:span["end"]], probability=max(last["probability"], span["probability"]))
        else:
            out.append(dict(span))
    return out
