"""Word models of an answer's clauses, whose logits count beside a head's: the failure steps (``story.StepText``)
and the Result facts (``FactText``).

Each clause is read as TF-IDF of its own words and word pairs, of the clauses before and after it (words, at
``context`` weight) and its place in the answer; one logistic regression per target (scikit-learn), kept as arrays
in a safetensors file and a JSON config beside the model. Its logits are added to the head's at ``weight``, which
the run that fits it chooses on held-out data (0 leaves the model out).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from star_scorer.features import clause_targets
from star_scorer.labels import FACTS
from star_scorer.text import char_labels

FACT_TEXT_WEIGHTS = "fact_text.safetensors"
FACT_TEXT_CONFIG = "fact_text.json"


class ClauseText:
    """TF-IDF of each clause and its neighbours -> one logistic regression per name of ``NAMES``."""

    NAMES: tuple[str, ...] = ()
    NAMES_KEY = "names"  # the config's key for NAMES
    WEIGHTS_FILE = CONFIG_FILE = ""
    SETTINGS = {"sublinear_tf": True, "lowercase": True, "min_df": 2}

    def __init__(self, vocabularies: tuple[list[str], list[str]], idfs: tuple[np.ndarray, np.ndarray], coef: np.ndarray,
                 bias: np.ndarray, context: float = 0.5, weight: float = 1.0) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.vocabularies, self.context, self.weight = vocabularies, context, weight
        self.vectorizers = []
        for vocabulary, idf, ngrams in zip(vocabularies, idfs, ((1, 2), (1, 1))):
            vec = TfidfVectorizer(vocabulary={t: i for i, t in enumerate(vocabulary)}, ngram_range=ngrams,
                                  **{k: v for k, v in self.SETTINGS.items() if k != "min_df"})
            vec.idf_ = np.asarray(idf, dtype=np.float64)
            self.vectorizers.append(vec)
        self.coef, self.bias = np.asarray(coef, dtype=np.float64), np.asarray(bias, dtype=np.float64)

    @staticmethod
    def _parts(answers: list[str], clauses: list[list[tuple[int, int]]]) -> tuple[list[str], list[str], list[str], np.ndarray]:
        """Every clause's text, the text before and after it ("" at the answer's edges) and its place, answer after answer."""
        own, before, after, place = [], [], [], []
        for answer, spans in zip(answers, clauses):
            texts = [answer[a:b] for a, b in spans]
            own += texts
            before += [""] + texts[:-1]
            after += texts[1:] + [""]
            place += [i / max(len(spans), 1) for i in range(len(spans))]
        return own, before, after, np.asarray(place, dtype=np.float64)[:, None]

    def _features(self, own, before, after, place):
        from scipy.sparse import hstack

        words, neighbours = self.vectorizers
        return hstack([words.transform(own), self.context * neighbours.transform(before),
                       self.context * neighbours.transform(after), place]).tocsr()

    @classmethod
    def fit_targets(cls, answers: list[str], clauses: list[list[tuple[int, int]]], targets: np.ndarray, c: float,
                    context: float) -> ClauseText | None:
        """Fitted on the clauses of ``answers`` with ``targets`` (clauses, names): 1, 0, or -1 where unknown (left out of
        that name's fit). None when there are no clauses or no word is in two of them."""
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        own, *_ = parts = cls._parts(answers, clauses)
        if not own:
            return None
        try:
            vecs = [TfidfVectorizer(ngram_range=n, **cls.SETTINGS).fit(own) for n in ((1, 2), (1, 1))]
        except ValueError:  # no word in two clauses: nothing the words could teach
            return None
        vocabularies = tuple([t for t, _ in sorted(v.vocabulary_.items(), key=lambda kv: kv[1])] for v in vecs)
        text = cls(vocabularies, tuple(v.idf_ for v in vecs), np.zeros((len(cls.NAMES), 1)), np.zeros(len(cls.NAMES)), context)
        x = text._features(*parts)
        text.coef, text.bias = np.zeros((len(cls.NAMES), x.shape[1])), np.zeros(len(cls.NAMES))
        for k in range(len(cls.NAMES)):
            known = targets[:, k] >= 0
            if len(set(targets[known, k])) == 2:  # a name no training clause shows (or every one does): the words add nothing
                model = LogisticRegression(max_iter=3000, C=c).fit(x[known], targets[known, k])
                text.coef[k], text.bias[k] = model.coef_[0], model.intercept_[0]
        return text

    def logits(self, answers: list[str], clauses: list[list[tuple[int, int]]]) -> list[np.ndarray]:
        """Each answer's (clauses, names) logits from the words alone."""
        if not any(clauses):
            return [np.zeros((len(spans), len(self.NAMES))) for spans in clauses]
        z = np.asarray(self._features(*self._parts(answers, clauses)) @ self.coef.T) + self.bias
        bounds = np.cumsum([0] + [len(spans) for spans in clauses])
        return [z[a:b] for a, b in zip(bounds, bounds[1:])]

    def combine(self, logits: list[np.ndarray], answers: list[str], clauses: list[list[tuple[int, int]]],
                weight: float | None = None) -> list[np.ndarray]:
        """The head's logits with this model's added at ``weight`` (None: its own)."""
        weight = self.weight if weight is None else weight
        return [np.asarray(h, dtype=np.float64) + weight * t[: len(h)] for h, t in zip(logits, self.logits(answers, clauses))]

    def save(self, directory: Path) -> None:
        save_file({"idf_words": torch.tensor(self.vectorizers[0].idf_, dtype=torch.float32),
                   "idf_neighbours": torch.tensor(self.vectorizers[1].idf_, dtype=torch.float32),
                   "coef": torch.tensor(self.coef, dtype=torch.float32), "bias": torch.tensor(self.bias, dtype=torch.float32)},
                  str(Path(directory) / self.WEIGHTS_FILE))
        config = {"vocabularies": list(self.vocabularies), "context": self.context, "weight": self.weight, self.NAMES_KEY: list(self.NAMES)}
        (Path(directory) / self.CONFIG_FILE).write_text(json.dumps(config))

    @classmethod
    def remove(cls, directory: Path) -> None:
        """Delete a saved model of this kind from ``directory`` (a refit that drops it leaves no stale one behind)."""
        for name in (cls.WEIGHTS_FILE, cls.CONFIG_FILE):
            (Path(directory) / name).unlink(missing_ok=True)

    @classmethod
    def load(cls, directory: Path) -> ClauseText | None:
        """The model of this kind saved in ``directory``, or None when it has none."""
        directory = Path(directory)
        if not (directory / cls.WEIGHTS_FILE).exists():
            return None
        config = json.loads((directory / cls.CONFIG_FILE).read_text())
        if config[cls.NAMES_KEY] != list(cls.NAMES):
            raise ValueError(f"{directory / cls.CONFIG_FILE}: expected this library's {cls.NAMES_KEY} {list(cls.NAMES)}, "
                             f"found {config[cls.NAMES_KEY]}")
        t = {k: v.double().numpy() for k, v in load_file(str(directory / cls.WEIGHTS_FILE)).items()}
        return cls(tuple(config["vocabularies"]), (t["idf_words"], t["idf_neighbours"]), t["coef"], t["bias"], config["context"],
                   config["weight"])


class FactText(ClauseText):
    """The Result facts T, B, NB and V from a clause's words, beside the fact heads' clause logits.

    The words that say a downstream effect happened ("adopted", "complaints", "we lost", "fewer tickets") are plain and
    many; the clause heads read states tuned for sections, and on realworld missed B in answers of process adoption and
    harmful effects. Fitted on every training answer's clauses with the heads' own targets (``features.clause_targets``:
    1 on the evidence of a fact that holds, 0 on the Result's other clauses, unknown elsewhere), the counterfactual
    copies included (they flip NB and B by one clause). Its weight is chosen with the score's offsets
    (``jobs.calibrate``). v27 (C 4, context 0.5, weight 0.5): realworld QWK 0.800 -> 0.826 in-sample, B F1 0.779 ->
    0.845; held out (``scripts/cv_fact_text.py``) 0.770 -> 0.796 at weight 0.5, but only -> 0.776 when half of
    realworld chooses the weight for the other half; blind test 0.904 -> 0.895 (docs/experiments.md, session 23).
    """

    NAMES = tuple(FACTS)
    NAMES_KEY = "facts"
    WEIGHTS_FILE, CONFIG_FILE = FACT_TEXT_WEIGHTS, FACT_TEXT_CONFIG

    @classmethod
    def fit(cls, records: list[dict], clauses_of: Callable[[str], list[tuple[int, int]]], c: float = 4.0,
            context: float = 0.5) -> FactText | None:
        clauses = [clauses_of(r["answer"]) for r in records]
        targets = [clause_targets(r, spans, char_labels(r["answer"], r["segments"]))[1] for r, spans in zip(records, clauses)]
        rows = np.array([t for answer in targets for t in answer], dtype=np.float64).reshape(-1, len(cls.NAMES))
        return cls.fit_targets([r["answer"] for r in records], clauses, rows, c, context)
