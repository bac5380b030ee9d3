"""The library-grade inference object: one scoring path for the CLI, MLflow pyfunc, evaluation and tests.

    scorer = StarScorer.load("models/20261126-101500")
    scorer.predict("We had a fraud model ...")        # -> dict
    scorer.predict([answer1, answer2], max_windows=16)  # -> list[dict]; max_windows: encoder windows per forward pass
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from transformers import AutoTokenizer

from star_scorer.decode import quality_from_clauses, spans_from_words, switch_penalties, viterbi, word_scores
from star_scorer.features import WindowCollator, answer_inputs, window_batches
from star_scorer.modeling import CONFIG_NAME, StarScorerModel
from star_scorer.paths import MODELS_DIR, REGISTERED_MODEL_NAME

logger = logging.getLogger(__name__)

SCORED_SECTIONS = ("SITUATION", "TASK", "ACTION", "RESULT")


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class StarScorer:
    def __init__(self, model: StarScorerModel, tokenizer, device: str | torch.device | None = None) -> None:
        self.device = torch.device(device) if device else default_device()
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.config = model.scorer_config
        self.labels = self.config.labels
        self.collator = WindowCollator(tokenizer.pad_token_id)

    @classmethod
    def load(cls, spec: str | Path | None = None, device: str | torch.device | None = None) -> StarScorer:
        """Load from a model folder, an MLflow ``models:/`` or ``runs:/`` URI, or (None) the default model."""
        directory = resolve_model_dir(spec)
        device = torch.device(device) if device else default_device()
        model = StarScorerModel.from_pretrained(directory, device=device)
        tokenizer = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
        logger.info("loaded scorer from %s on %s", directory, device)
        return cls(model, tokenizer, device)

    # -- public API -------------------------------------------------------------
    def predict(self, answers: str | list[str], max_windows: int = 16) -> dict | list[dict]:
        if isinstance(answers, str):
            return self.predict([answers], max_windows)[0]
        results: list[dict | None] = [None] * len(answers)
        for index, result in self.predict_iter(answers, max_windows):
            results[index] = result
        return results  # type: ignore[return-value]

    def predict_iter(self, answers: list[str], max_windows: int = 16) -> Iterator[tuple[int, dict]]:
        """(input index, result) pairs, batch by batch, in an order that packs similar lengths together."""
        for i, text in enumerate(answers):
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f"expected answer {i} to be non-empty text, found {text!r:.40}")
        for i, raw in self.raw_outputs(answers, max_windows):
            yield i, self.decode(answers[i], *raw)

    def raw_outputs(self, answers: list[str], max_windows: int = 16) -> Iterator[tuple[int, tuple]]:
        """(index, (encoding, clause spans, token log-probs, clause fact logits)): the model's part, before decoding."""
        cfg = self.config
        prepared = [answer_inputs(self.tokenizer, text, cfg.max_length, cfg.stride, cfg.units) for text in answers]
        encoded = [enc for enc, _, _ in prepared]
        order = sorted(range(len(answers)), key=lambda i: len(encoded[i].input_ids))
        for batch in window_batches(order, [len(e.windows) for e in encoded], max_windows):
            outputs = self._forward([prepared[i][2] for i in batch])
            for i, out in zip(batch, outputs):
                yield i, (encoded[i], prepared[i][2]["clauses"], *out)

    def score_rows(self, rows: list[dict], max_windows: int = 16, progress=None) -> list[dict]:
        """One output row per input row, in input order; a bad row gets ``error`` and the rest go on.

        ``rows`` are mappings with ``answer`` and optional ``id`` (default: the row number)
        and ``question``. ``progress`` (e.g. a tqdm bar) is advanced once per row.
        """
        outputs: list[dict | None] = [None] * len(rows)
        ids = [_row_id(row, i) for i, row in enumerate(rows)]
        valid: list[int] = []
        for i, row in enumerate(rows):
            problem = answer_problem(row.get("answer") if isinstance(row, dict) else None)
            if problem:
                outputs[i] = _error_row(ids[i], problem)
                if progress is not None:
                    progress.update(1)
            else:
                valid.append(i)
        answers = [rows[i]["answer"] for i in valid]
        try:
            pairs = list(self._predict_pairs(answers, max_windows, progress))
        except Exception:  # a failure inside a batch: retry row by row so only the bad row is lost
            logger.exception("batch failed; scoring row by row")
            pairs = []
            for j, text in enumerate(answers):
                try:
                    pairs.append((j, self.predict(text)))
                except Exception as err:  # noqa: BLE001 - reported in the row, run goes on
                    pairs.append((j, {"error": f"scoring failed: {type(err).__name__}: {err}"}))
        for j, result in pairs:
            i = valid[j]
            outputs[i] = _error_row(ids[i], result["error"]) if "error" in result else {"id": ids[i], **result, "error": None}
        return outputs  # type: ignore[return-value]

    def _predict_pairs(self, answers: list[str], max_windows: int, progress) -> Iterator[tuple[int, dict]]:
        for pair in self.predict_iter(answers, max_windows):
            if progress is not None:
                progress.update(1)
            yield pair

    # -- internals --------------------------------------------------------------
    @torch.inference_mode()
    def _forward(self, inputs: list[dict]) -> list[tuple[np.ndarray, np.ndarray]]:
        batch = {k: v.to(self.device) for k, v in self.collator(inputs).items()}
        out = self.model(**batch)
        logp = out.section_logits.float().log_softmax(-1).cpu().numpy()
        clause = out.clause_logits.float().cpu().numpy()
        return [(logp[a, : len(inp["token_unit"])], clause[a, : len(inp["clauses"])]) for a, inp in enumerate(inputs)]

    def decode(self, text: str, enc, clauses, token_logp, clause_logits) -> dict:
        cfg = self.config
        words, scores = word_scores(text, enc.offsets, token_logp)
        if cfg.label_bias:
            scores = scores + np.array([cfg.label_bias.get(label, 0.0) for label in self.labels])
        penalties = switch_penalties(text, words, cfg.switch_penalty, cfg.clause_penalty, cfg.sentence_penalty, cfg.connective_penalty,
                                     cfg.opener_penalty)
        path = viterbi(scores, penalties)
        sections = spans_from_words(text, words, [self.labels[k] for k in path])
        found = {s["label"] for s in sections}
        if cfg.fact_bias:
            clause_logits = clause_logits + np.array([cfg.fact_bias.get(fact, 0.0) for fact in cfg.facts])
        quality = quality_from_clauses(text, clauses, clause_logits, sections, list(cfg.facts), cfg.evidence_extend)
        return {
            "sections": sections,
            "result_quality": quality,
            "missing_sections": [label for label in SCORED_SECTIONS if label not in found],
        }


def answer_problem(answer: object) -> str | None:
    """Why ``answer`` cannot be scored, or None when it can."""
    if answer is None or (isinstance(answer, float) and np.isnan(answer)):
        return "expected a non-empty text answer, found a missing value"
    if not isinstance(answer, str):
        return f"expected a non-empty text answer, found {type(answer).__name__} {answer!r:.40}"
    if not answer.strip():
        return "expected a non-empty text answer, found an empty string"
    return None


def _row_id(row: object, i: int):
    rid = row.get("id") if isinstance(row, dict) else None
    if rid is None or (isinstance(rid, float) and np.isnan(rid)):
        return i
    return rid.item() if isinstance(rid, np.generic) else rid


def _error_row(rid, error: str) -> dict:
    return {"id": rid, "sections": [], "result_quality": None, "missing_sections": [], "error": error}


def newest_local_model(models_dir: Path = MODELS_DIR) -> Path | None:
    candidates = [p.parent for p in Path(models_dir).glob(f"*/{CONFIG_NAME}")]
    return max(candidates, key=lambda p: p.stat().st_mtime) if candidates else None


def resolve_model_dir(spec: str | Path | None) -> Path:
    """A local model folder for ``spec``: a folder, an MLflow model URI, or None for the default.

    The default is the newest trained model under models/, else the registered
    ``champion`` in the tracking store.
    """
    if spec is None:
        local = newest_local_model()
        if local is not None:
            return local
        spec = f"models:/{REGISTERED_MODEL_NAME}@champion"
        logger.info("no trained model under %s; trying %s", MODELS_DIR, spec)
    spec = str(spec)
    if spec.startswith(("models:/", "runs:/")):
        from star_scorer.tracking import download_model

        return download_model(spec)
    path = Path(spec)
    if not (path / CONFIG_NAME).exists():
        raise FileNotFoundError(
            f"expected a trained model folder (with {CONFIG_NAME}) or a models:/ URI, found {spec!r}; run `make train` first"
        )
    return path
