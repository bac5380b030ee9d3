"""What kind of story an answer tells: story type, competency and the failure steps it shows (issue 17).

Small heads read the fine-tuned encoder's states of an answer (the same forward pass
that labels sections and facts):

- the answer, as the mean and max of its content tokens' states -> story type
  (success, failure, lesson) and competency (labels.COMPETENCIES), softmax each;
- each clause (features.clause_spans), as the mean and max of its tokens' states, its
  number flags and the answer's vector -> the four failure steps (labels.FAILURE_STEPS)
  as independent probabilities. A step is shown where a clause says it (the data's
  step spans, data/briefs/steps-2026-12.md), as a Result fact is shown by its clause.

Beside them, ``StoryText`` reads the words: TF-IDF of the question (when the row has one)
and the answer, one linear layer each for story type and competency. The question names
the competency an interviewer probes, and topic words decide it better than states tuned
for sections (docs/experiments.md, session 10). Their log-probabilities are added to the
heads' with a weight per output chosen on dev.

Fitted after fine-tuning on the encoder's states of the training answers
(``star_scorer.jobs.fit_story``) and saved beside the model as ``story_heads.safetensors``,
``story_heads.json``, ``story_text.safetensors`` and ``story_text.json``; a model folder
without them scores as before.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from star_scorer.clause_text import ClauseText
from star_scorer.data import step_spans
from star_scorer.features import clause_step_targets
from star_scorer.labels import COMPETENCIES, FAILURE_STEPS, STORY_TYPES
from star_scorer.modeling import max_by_index, pool_by_index

WEIGHTS = "story_heads.safetensors"
CONFIG = "story_heads.json"
TEXT_WEIGHTS = "story_text.safetensors"
TEXT_CONFIG = "story_text.json"
STEP_TEXT_WEIGHTS = "story_step_text.safetensors"
STEP_TEXT_CONFIG = "story_step_text.json"


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
    """``context="gru"`` (the default): each clause's vector, the answer's and the clause's place in the answer are
    projected and read by a bidirectional GRU over the answer's clauses before the step logits, since the steps
    follow one another (detection before diagnosis before mitigation before prevention); ``"none"``: each clause alone
    (the heads of session 9). Test step F1 with the GRU: 0.48 / 0.58 / 0.62 / 0.71 against 0.33 / 0.51 / 0.50 / 0.70
    (docs/experiments.md, session 10)."""

    def __init__(self, hidden: int, n_clause_features: int, inner: int = 128, dropout: float = 0.1, context: str = "gru") -> None:
        super().__init__()
        if context not in ("gru", "none"):
            raise ValueError(f"expected context 'gru' or 'none', found {context!r}")
        self.dims = {"hidden": hidden, "n_clause_features": n_clause_features, "inner": inner, "dropout": dropout, "context": context}
        self.context = context
        self.answer = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * hidden, inner), nn.GELU(), nn.Dropout(dropout))
        self.story = nn.Linear(inner, len(STORY_TYPES))
        self.competency = nn.Linear(inner, len(COMPETENCIES))
        if context == "gru":
            self.clause_in = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * hidden + n_clause_features + inner + 1, inner), nn.GELU())
            self.clause_gru = nn.GRU(inner, inner // 2, batch_first=True, bidirectional=True)
            self.clause_out = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * inner, inner), nn.GELU(), nn.Linear(inner, len(FAILURE_STEPS)))
        else:
            self.clause = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * hidden + n_clause_features + inner, inner), nn.GELU(),
                                        nn.Dropout(dropout), nn.Linear(inner, len(FAILURE_STEPS)))

    def forward(self, answer: torch.Tensor, clauses: torch.Tensor, n_clauses: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(story logits (A, 3), competency logits (A, 12), step logits (A, clauses, 4)); ``n_clauses`` (A,): each answer's
        real clauses (the rest is padding), all of them when None."""
        a = self.answer(answer)
        width = clauses.size(1)
        context = a[:, None, :].expand(-1, width, -1)
        if self.context == "none":
            return self.story(a), self.competency(a), self.clause(torch.cat([clauses, context], -1))
        n = torch.full((clauses.size(0),), width) if n_clauses is None else n_clauses.clamp(min=1, max=width).cpu()
        place = torch.arange(width, device=clauses.device)[None, :].to(clauses.dtype) / n[:, None].to(clauses.device, clauses.dtype)
        h = self.clause_in(torch.cat([clauses, context, place[..., None]], -1))
        packed = nn.utils.rnn.pack_padded_sequence(h, n, batch_first=True, enforce_sorted=False)
        g, _ = self.clause_gru(packed)
        g, _ = nn.utils.rnn.pad_packed_sequence(g, batch_first=True, total_length=width)
        return self.story(a), self.competency(a), self.clause_out(torch.cat([h, g.to(h.dtype)], -1))

    text: StoryText | None = None  # the words' model, added to the story type and competency heads when present
    step_text: StepText | None = None  # the clauses' words, added to the step logits when present
    step_thresholds: dict[str, float] | None = None  # per step, the probability at which a clause shows it (0.5 when None)

    def story_logits(self, story: np.ndarray, competency: np.ndarray, answers: list[str],
                     questions: list[str | None] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The heads' story type and competency logits for a batch, with the text model's added when there is one."""
        if self.text is None:
            return story, competency
        return self.text.combine(story, competency, answers, questions)

    def step_logits(self, steps: list[np.ndarray], answers: list[str], clauses: list[list[tuple[int, int]]]) -> list[np.ndarray]:
        """Each answer's (clauses, 4) step logits, with the step text model's added when there is one."""
        return steps if self.step_text is None else self.step_text.combine(steps, answers, clauses)

    def from_states(self, tokens: torch.Tensor, token_unit: torch.Tensor, token_clause: torch.Tensor, clause_features: torch.Tensor,
                    n_clauses: torch.Tensor | None = None):
        return self(answer_vectors(tokens, token_unit), clause_vectors(tokens, token_clause, clause_features), n_clauses)

    def save(self, directory: Path, extra: dict | None = None) -> None:
        save_file({k: v.contiguous() for k, v in self.state_dict().items()}, str(Path(directory) / WEIGHTS))
        if self.text is not None:
            self.text.save(directory)
        if self.step_text is not None:
            self.step_text.save(directory)
        else:  # a refit that drops the step text model leaves no stale one behind
            StepText.remove(directory)
        config = self.dims | {"story_types": list(STORY_TYPES), "competencies": list(COMPETENCIES), "steps": list(FAILURE_STEPS),
                              "step_thresholds": self.step_thresholds}
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
        heads = cls(config["hidden"], config["n_clause_features"], config["inner"], config["dropout"], config.get("context", "none"))
        heads.load_state_dict(load_file(str(directory / WEIGHTS)))
        heads.text = StoryText.load(directory)
        heads.step_text = StepText.load(directory)
        heads.step_thresholds = config.get("step_thresholds")
        return heads.eval()


def story_text_input(answer: str, question: str | None = None) -> str:
    """What StoryText reads: the question and the answer, or the answer alone."""
    return f"{question.strip()} || {answer}" if isinstance(question, str) and question.strip() else answer


class StoryText:
    """TF-IDF of question and answer -> story type and competency logits; fitted with scikit-learn, kept as arrays.

    Trained on every answer twice, with its question and without, so that rows without a
    question are read as well. ``weights`` are what its log-probabilities count beside the
    heads' ({"story_type": w, "competency": w}, chosen on dev).
    """

    SETTINGS = {"ngram_range": (1, 2), "sublinear_tf": True, "lowercase": True}

    def __init__(self, vocabulary: list[str], idf: np.ndarray, story: tuple[np.ndarray, np.ndarray],
                 competency: tuple[np.ndarray, np.ndarray], weights: dict[str, float] | None = None) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.vocabulary = vocabulary
        self.vectorizer = TfidfVectorizer(vocabulary={t: i for i, t in enumerate(vocabulary)}, **self.SETTINGS)
        self.vectorizer.idf_ = np.asarray(idf, dtype=np.float64)
        self.story, self.competency = story, competency
        self.weights = weights or {"story_type": 1.0, "competency": 1.0}

    @classmethod
    def fit(cls, records: list[dict], max_features: int = 40000, c: float = 16.0) -> StoryText:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        records = [r for r in records if r.get("story_type") in STORY_TYPES and r.get("competency") in COMPETENCIES]
        texts = [story_text_input(r["answer"], r.get("question")) for r in records] + [r["answer"] for r in records]
        vec = TfidfVectorizer(min_df=2, max_features=max_features, **cls.SETTINGS).fit(texts)
        x = vec.transform(texts)
        heads = []
        for names, key in ((STORY_TYPES, "story_type"), (COMPETENCIES, "competency")):
            y = [names.index(r[key]) for r in records] * 2
            model = LogisticRegression(max_iter=3000, C=c).fit(x, y)
            coef = np.zeros((len(names), x.shape[1]))
            bias = np.full(len(names), -30.0)  # a class no answer shows: never predicted
            for row, k in enumerate(model.classes_):
                if len(model.classes_) == 2:  # binary: sklearn keeps one row
                    coef[k], bias[k] = (model.coef_[0], model.intercept_[0]) if row == 1 else (0.0, 0.0)
                else:
                    coef[k], bias[k] = model.coef_[row], model.intercept_[row]
            heads.append((coef, bias))
        vocabulary = [t for t, _ in sorted(vec.vocabulary_.items(), key=lambda kv: kv[1])]
        return cls(vocabulary, vec.idf_, heads[0], heads[1])

    def log_probs(self, answers: list[str], questions: list[str | None] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(story type log-probs (n, 3), competency log-probs (n, 12))."""
        questions = questions or [None] * len(answers)
        x = self.vectorizer.transform([story_text_input(a, q) for a, q in zip(answers, questions)])
        out = []
        for coef, bias in (self.story, self.competency):
            z = np.asarray(x @ coef.T) + bias
            out.append(z - np.logaddexp.reduce(z, axis=1, keepdims=True))
        return out[0], out[1]

    def combine(self, story_logits: np.ndarray, competency_logits: np.ndarray, answers: list[str],
                questions: list[str | None] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The heads' (n, 3) and (n, 12) logits with this model's log-probabilities added at their weights."""
        story, competency = self.log_probs(answers, questions)
        norm = lambda z: z - np.logaddexp.reduce(z, axis=-1, keepdims=True)  # noqa: E731
        return (norm(np.asarray(story_logits, dtype=np.float64)) + self.weights["story_type"] * story,
                norm(np.asarray(competency_logits, dtype=np.float64)) + self.weights["competency"] * competency)

    def save(self, directory: Path) -> None:
        save_file({"idf": torch.tensor(self.vectorizer.idf_, dtype=torch.float32),
                   "story_coef": torch.tensor(self.story[0], dtype=torch.float32), "story_bias": torch.tensor(self.story[1], dtype=torch.float32),
                   "competency_coef": torch.tensor(self.competency[0], dtype=torch.float32),
                   "competency_bias": torch.tensor(self.competency[1], dtype=torch.float32)}, str(Path(directory) / TEXT_WEIGHTS))
        config = {"vocabulary": self.vocabulary, "weights": self.weights, "story_types": list(STORY_TYPES), "competencies": list(COMPETENCIES),
                  "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in self.SETTINGS.items()}}
        (Path(directory) / TEXT_CONFIG).write_text(json.dumps(config))

    @classmethod
    def load(cls, directory: Path) -> StoryText | None:
        """The text model saved in ``directory``, or None when it has none."""
        directory = Path(directory)
        if not (directory / TEXT_WEIGHTS).exists():
            return None
        config = json.loads((directory / TEXT_CONFIG).read_text())
        if config["story_types"] != list(STORY_TYPES) or config["competencies"] != list(COMPETENCIES):
            raise ValueError(f"{directory / TEXT_CONFIG}: expected this library's story types and competencies, "
                             f"found {config['story_types']}, {config['competencies']}")
        t = {k: v.double().numpy() for k, v in load_file(str(directory / TEXT_WEIGHTS)).items()}
        return cls(config["vocabulary"], t["idf"], (t["story_coef"], t["story_bias"]), (t["competency_coef"], t["competency_bias"]),
                   config["weights"])


class StepText(ClauseText):
    """The failure steps from a clause's words, beside the step heads (``clause_text.ClauseText``).

    The words that tell the steps apart ("paged", "traced it to", "rolled back", "added a check") are few and
    plain, and a step's neighbours tell where in the story a clause stands. Its logits count beside the step heads'
    at ``weight``, chosen on dev with the step thresholds. On the encoder of session 22's ``make train``, over five
    fits of the heads, the blind test's mean step F1 rose +0.022 and the other writers' +0.028, in every fit; on that
    run's own heads +0.019 and +0.003 (docs/experiments.md, session 22).
    """

    NAMES = tuple(FAILURE_STEPS)
    NAMES_KEY = "steps"
    WEIGHTS_FILE, CONFIG_FILE = STEP_TEXT_WEIGHTS, STEP_TEXT_CONFIG

    @classmethod
    def fit(cls, records: list[dict], clauses_of, c: float = 16.0, context: float = 0.5) -> StepText | None:
        """Fitted on the answers annotated for steps (``data.step_spans``), each clause's targets as the heads learn them
        (``features.clause_step_targets``); None when no answer is annotated or no word is in two clauses."""
        records = [r for r in records if step_spans(r) is not None]
        clauses = [clauses_of(r["answer"]) for r in records]
        targets = np.array([t for r, spans in zip(records, clauses) for t in clause_step_targets(step_spans(r), spans)],
                           dtype=np.float64).reshape(-1, len(cls.NAMES))
        return cls.fit_targets([r["answer"] for r in records], clauses, targets, c, context)


def decode_story(text: str, clauses: list[tuple[int, int]], story_logits, competency_logits, step_logits,
                 thresholds: dict[str, float] | None = None) -> dict:
    """The row's ``story``: type and competencies with probabilities, and each failure step with the clauses that show it
    (a clause shows a step at its ``thresholds`` probability, chosen on dev by ``fit_story``; 0.5 when None)."""
    thresholds = thresholds or {}
    story = torch.as_tensor(story_logits).float().softmax(-1).tolist()
    competency = torch.as_tensor(competency_logits).float().softmax(-1).tolist()
    steps_p = torch.as_tensor(step_logits).float().sigmoid()[: len(clauses)]
    steps = {}
    for k, step in enumerate(FAILURE_STEPS):
        probs = steps_p[:, k].tolist() if len(clauses) else []
        spans = [{"start": a, "end": b, "text": text[a:b], "probability": round(p, 4)} for (a, b), p in zip(clauses, probs)
                 if p >= thresholds.get(step, 0.5)]
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
