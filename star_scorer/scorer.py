"""The library-grade inference object: one scoring path for the CLI, MLflow pyfunc, evaluation and tests.

    scorer = StarScorer.load("models/20261126-101500")
    scorer.predict("We had a fraud model ...")        # -> dict
    scorer.predict([answer1, answer2], max_windows=16)  # -> list[dict]; max_windows: encoder windows per forward pass
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from transformers import AutoTokenizer

from star_scorer import attention as window_attention
from star_scorer.clause_text import FactText
from star_scorer.decode import quality_from_clauses, reach_result, spans_from_words, switch_penalties, viterbi, word_scores
from star_scorer.features import Encoded, WindowCollator, answer_inputs, encode, encoded_inputs, window_batches
from star_scorer.feedback import feedback_lines, ownership
from star_scorer.io import PARSE_ERROR
from star_scorer.modeling import CONFIG_NAME, StarScorerModel, answer_tokens
from star_scorer.paths import MODELS_DIR, REGISTERED_MODEL_NAME
from star_scorer.story import StoryHeads, decode_story

logger = logging.getLogger(__name__)

SCORED_SECTIONS = ("SITUATION", "TASK", "ACTION", "RESULT")
SCHEMA_VERSION = "2"  # what one scored row holds: SCHEMA_PATH, a JSON Schema
SCHEMA_PATH = Path(__file__).with_name("scored_row.schema.json")
SCORE_RULE = "rubric over the facts of the clauses decoded as RESULT (LABELING.md section 2)"
WINDOW_MULTIPLE = 32  # windows padded to 32-token steps: a bounded set of shapes keeps a long run's memory flat
MAX_ANSWER_WORDS = 5000  # about 35 minutes of speech; real answers stay under 1,000 words
# oneDNN keeps a compiled kernel per shape it has met (1,024 by default); the heads meet a new shape with nearly every
# batch, so a long run's peak memory grew with its length. make bench on session 23's host, peak RSS at 1,000 / 50,000
# rows and speed over the naive pipeline: uncapped 878 / 1,104 MB (x1.26), 5.32-5.43x; 128: 904 / 1,087 (x1.20),
# 4.95-5.29x; 32: 860 / 982 (x1.14), 4.79-4.84x (docs/experiments.md, session 23). Read at oneDNN's first kernel.
KERNEL_CACHE = 128


PRECISIONS = ("auto", "fp32", "bf16")
ATTENTIONS = ("auto", "windows", "sdpa")
_INTRA_OP = threading.Lock()  # one threaded scoring at a time changes torch's (process-wide) intra-op thread count


def cpu_has_amx() -> bool:
    """Whether this CPU has AMX tiles (torch's CPU kernels then run bf16 matmuls, attention's too, on them)."""
    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)  # private in torch 2.x: absent means unknown, so no
    return bool(probe()) if probe is not None else False


def bound_kernel_cache(capacity: int = KERNEL_CACHE) -> None:
    """Cap oneDNN's cache of compiled CPU kernels at ``capacity`` shapes, unless ONEDNN_PRIMITIVE_CACHE_CAPACITY is
    set already. oneDNN reads it once, at its first kernel: a process that has run a bf16 matmul keeps its cache."""
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", str(capacity))


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bf16 natively (AVX512-BF16 or AMX); elsewhere bf16 is emulated and slower than fp32."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto``: bf16 weights where the device multiplies bf16 natively, else fp32.

    bf16 keeps the figures (section macro-F1 and QWK within 0.001 of fp32 on dev, the
    blind test and realworld: ``make bench``) at about 2.4 times the speed on 2 CPU cores.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"expected a precision among {list(PRECISIONS)}, found {precision!r}")
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if cpu_has_bf16() else "fp32"


class StarScorer:
    def __init__(self, model: StarScorerModel, tokenizer, device: str | torch.device | None = None, source: str | None = None,
                 precision: str = "fp32", story_heads: StoryHeads | None = None, workers: int | None = None,
                 fact_text: FactText | None = None) -> None:
        self.device = torch.device(device) if device else default_device()
        # CPU: batches scored by this many threads of one intra-op thread each, so one batch's decoding (Python,
        # one core) overlaps another's encoder instead of leaving a core idle; None: torch's intra-op thread count
        self.workers = 1 if self.device.type != "cpu" else max(workers or torch.get_num_threads(), 1)
        self.precision = resolve_precision(precision, self.device)
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float32
        self.model = model.to(self.device, dtype).eval()
        self.story_heads = story_heads.to(self.device, dtype).eval() if story_heads is not None else None
        self.fact_text = fact_text  # the clauses' words, added to the fact heads' clause logits when present
        self.tokenizer = tokenizer
        self.config = model.scorer_config
        self.labels = self.config.labels
        self.collator = WindowCollator(tokenizer.pad_token_id, pad_to_multiple=WINDOW_MULTIPLE)
        self.source = source or "in-memory model"  # what every row's "model" says produced it

    @classmethod
    def load(cls, spec: str | Path | None = None, device: str | torch.device | None = None, precision: str = "auto",
             workers: int | None = None, attention: str = "auto") -> StarScorer:
        """Load from a model folder, an MLflow ``models:/`` or ``runs:/`` URI, or (None) the default model.

        Rows name the model as ``star-scorer vN`` for a registered one, else the run URI or the folder's name.
        ``precision``: ``auto`` (bf16 where the device does bf16 natively), ``fp32`` or ``bf16``.
        ``workers``: CPU threads that score batches side by side (None: torch's intra-op thread count).
        ``attention``: ``auto`` (``windows`` on a CPU without AMX tiles, else ``sdpa``), ``windows``
        (``star_scorer.attention``: each window's own tokens, one window at a time) or ``sdpa`` (torch's fused
        attention, as in training). Where the cores have AMX, torch's bf16 attention runs on it and is the faster:
        realworld 80 against 63 answers/s on session 22's host; on AVX512-BF16 cores without it, windows halve
        the attention's time (docs/experiments.md, sessions 15 and 22).
        """
        directory = resolve_model_dir(spec)
        device = torch.device(device) if device else default_device()
        if device.type == "cpu":
            bound_kernel_cache()
        model = StarScorerModel.from_pretrained(directory, device=device)
        if attention not in ATTENTIONS:
            raise ValueError(f"expected attention among {list(ATTENTIONS)}, found {attention!r}")
        if attention == "windows" or (attention == "auto" and device.type == "cpu" and not cpu_has_amx()):
            model.encoder.set_attn_implementation(window_attention.NAME)  # this scorer owns the model: training never sees it
        tokenizer = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
        logger.info("loaded scorer from %s on %s", directory, device)
        source = directory.name
        if spec is not None and str(spec).startswith(("models:/", "runs:/")):
            from star_scorer.tracking import describe_model_uri

            source = describe_model_uri(str(spec))
        return cls(model, tokenizer, device, source=source, precision=precision, story_heads=StoryHeads.load(directory), workers=workers,
                   fact_text=FactText.load(directory))

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
        prepared = [answer_inputs(self.tokenizer, text, cfg.max_length, cfg.stride, cfg.units, cfg.windows) for text in answers]
        encoded = [enc for enc, _, _ in prepared]
        order = sorted(range(len(answers)), key=lambda i: len(encoded[i].input_ids))
        for batch in window_batches(order, [len(e.windows) for e in encoded], max_windows):
            outputs = self._forward([prepared[i][2] for i in batch], [answers[i] for i in batch])
            for i, out in zip(batch, outputs):
                yield i, (encoded[i], prepared[i][2]["clauses"], *out)

    def score_rows(self, rows: list[dict], max_windows: int = 16, progress=None, first_index: int = 0) -> list[dict]:
        """One output row per input row, in input order; a bad row gets ``error`` and the rest go on.

        ``rows`` are mappings with ``answer`` and optional ``id`` (default: the row number,
        counted from ``first_index``) and ``question``. A batch whose forward pass fails is
        retried row by row, that batch alone. ``progress`` (e.g. a tqdm bar) is advanced
        once per row.
        """
        outputs: list[dict | None] = [None] * len(rows)
        ids = [_row_id(row, first_index + i) for i, row in enumerate(rows)]
        valid: list[int] = []
        for i, row in enumerate(rows):
            problem = (row.get(PARSE_ERROR) or answer_problem(row.get("answer"))) if isinstance(row, dict) else \
                f"expected a mapping with an 'answer', found {type(row).__name__}"
            if problem:
                outputs[i] = self._row(ids[i], error=problem)
                if progress is not None:
                    progress.update(1)
            else:
                valid.append(i)
        answers = [rows[i]["answer"] for i in valid]
        questions = [rows[i].get("question") for i in valid]
        for j, result in self._predict_pairs(answers, max_windows, progress, questions):
            i = valid[j]
            outputs[i] = self._row(ids[i], error=result["error"]) if "error" in result else self._row(ids[i], answers[j], result)
        return outputs  # type: ignore[return-value]

    def _row(self, rid, text: str | None = None, result: dict | None = None, error: str | None = None) -> dict:
        """A scored row (schema ``SCHEMA_VERSION``): the result, its feedback and what produced it; or an error row."""
        row = {"id": rid, "sections": [], "result_quality": None, "missing_sections": [], "ownership": None, "story": None,
               "feedback": []}
        if result is not None:
            told = ownership(text, result["sections"])
            row |= result | {"ownership": told,
                             "feedback": feedback_lines(text, result["sections"], result["result_quality"], result.get("story"), told)}
        return row | {"model": self.source, "score_rule": SCORE_RULE, "schema_version": SCHEMA_VERSION, "error": error}

    def _predict_pairs(self, answers: list[str], max_windows: int, progress, questions: list | None = None) -> Iterator[tuple[int, dict]]:
        """(index, result or {"error"}) for every answer; a failing batch is retried one answer at a time."""
        questions = questions or [None] * len(answers)
        cfg = self.config
        specials = (self.tokenizer.cls_token_id, self.tokenizer.sep_token_id)
        encoded: list[Encoded | None] = []  # tokenized here, once (the tokenizer is not shared across threads)
        for j, text in enumerate(answers):
            try:
                encoded.append(encode(self.tokenizer, text, cfg.max_length, cfg.stride, cfg.windows))
            except Exception as err:  # noqa: BLE001 - reported in the row, the run goes on
                encoded.append(None)
                yield j, _read_failed(err)
                if progress is not None:
                    progress.update(1)
        order = sorted((j for j, e in enumerate(encoded) if e is not None), key=lambda j: len(encoded[j].input_ids))
        batches = list(window_batches(order, [len(e.windows) if e else 0 for e in encoded], max_windows))

        def score(batch: list[int]) -> list[tuple[int, dict]]:
            """One batch's results: the rest of its inputs, the forward pass and decoding (a scoring thread's share)."""
            done, prepared = [], {}
            for j in batch:
                try:
                    prepared[j] = (encoded[j], *encoded_inputs(encoded[j], answers[j], specials, cfg.units))
                except Exception as err:  # noqa: BLE001 - reported in the row, the run goes on
                    done.append((j, _read_failed(err)))
            ready = list(prepared)
            if not ready:
                return done
            try:
                outputs = self._forward([prepared[j][2] for j in ready], [answers[j] for j in ready], [questions[j] for j in ready])
                return done + [(j, self.decode(answers[j], prepared[j][0], prepared[j][2]["clauses"], *out)) for j, out in zip(ready, outputs)]
            except Exception:  # noqa: BLE001 - this batch alone goes row by row
                logger.exception("a batch of %d answers failed; scoring them one by one", len(ready))
                return done + [(j, self._one(answers[j], prepared[j], questions[j])) for j in ready]

        with self._threads(len(batches)) as pool:
            for results in (pool.map(score, batches) if pool else map(score, batches)):
                for pair in results:
                    if progress is not None:
                        progress.update(1)
                    yield pair

    @contextmanager
    def _threads(self, n_batches: int) -> Iterator[ThreadPoolExecutor | None]:
        """A pool of ``workers`` threads with one intra-op thread each, or None (one batch, one worker, or a GPU)."""
        if self.workers < 2 or n_batches < 2:
            yield None
            return
        with _INTRA_OP:
            before = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                with ThreadPoolExecutor(self.workers, thread_name_prefix="star-scorer") as pool:
                    yield pool
            finally:
                torch.set_num_threads(before)

    def _one(self, text: str, prepared: tuple, question: str | None = None) -> dict:
        try:
            (out,) = self._forward([prepared[2]], [text], [question])
            return self.decode(text, prepared[0], prepared[2]["clauses"], *out)
        except Exception as err:  # noqa: BLE001 - reported in the row, the run goes on
            return {"error": f"scoring failed: {type(err).__name__}: {err}"}

    # -- internals --------------------------------------------------------------
    @torch.inference_mode()
    def states(self, inputs: list[dict]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """The collated batch of ``answer_inputs``' inputs and the encoder's (answers, tokens, hidden) states for it."""
        batch = {k: v.to(self.device) for k, v in self.collator(inputs).items()}
        if self.model.encoder.config._attn_implementation != window_attention.NAME:
            return batch, self.model.answer_states(batch["input_ids"], batch["attention_mask"], batch["answer_index"],
                                                   batch["token_pos"], batch["token_unit"].shape)
        # window attention: the windows' real tokens go through the encoder end to end, no padding computed
        hidden = window_attention.packed_states(self.model.encoder, batch["input_ids"], batch["attention_mask"], self.tokenizer.pad_token_id)
        return batch, answer_tokens(hidden, batch["answer_index"], batch["token_pos"], batch["token_unit"].shape)

    @torch.inference_mode()
    def _forward(self, inputs: list[dict], answers: list[str] | None = None, questions: list | None = None) -> list[tuple]:
        """Per answer (token log-probs, clause fact logits[, story logits]): the model's part, before decoding.

        ``answers`` (and their ``questions``) let the text models read the words (``fact_text`` for the clause fact
        logits, the story heads' for story type, competency and steps); without them all come from the heads alone."""
        batch, tokens = self.states(inputs)
        out = self.model.heads(tokens, batch["token_unit"], batch["unit_features"], batch["token_clause"], batch["clause_features"])
        logp = out.section_logits.float().log_softmax(-1).cpu().numpy()
        clause = out.clause_logits.float().cpu().numpy()
        clauses = [clause[a, : len(inp["clauses"])] for a, inp in enumerate(inputs)]
        if self.fact_text is not None and answers is not None:
            clauses = self.fact_text.combine(clauses, answers, [inp["clauses"] for inp in inputs])
        rows = [(logp[a, : len(inp["token_unit"])], clauses[a]) for a, inp in enumerate(inputs)]
        if self.story_heads is None:
            return rows
        n_clauses = torch.tensor([max(len(inp["clauses"]), 1) for inp in inputs])
        story, competency, steps = (t.float().cpu().numpy() for t in self.story_heads.from_states(
            tokens, batch["token_unit"], batch["token_clause"], batch["clause_features"], n_clauses))
        steps = [steps[a, : len(inp["clauses"])] for a, inp in enumerate(inputs)]
        if answers is not None:
            story, competency = self.story_heads.story_logits(story, competency, answers, questions)
            steps = self.story_heads.step_logits(steps, answers, [inp["clauses"] for inp in inputs])
        return [(*row, (story[a], competency[a], steps[a])) for a, row in enumerate(rows)]

    def decode(self, text: str, enc, clauses, token_logp, clause_logits, story=None) -> dict:
        cfg = self.config
        words, scores = word_scores(text, enc.offsets, token_logp)
        if cfg.label_bias:
            scores = scores + np.array([cfg.label_bias.get(label, 0.0) for label in self.labels])
        penalties = switch_penalties(text, words, cfg.switch_penalty, cfg.clause_penalty, cfg.sentence_penalty, cfg.connective_penalty,
                                     cfg.opener_penalty)
        path = viterbi(scores, penalties)
        probs = np.exp(scores - np.logaddexp.reduce(scores, axis=1, keepdims=True)) if len(path) else np.zeros((0, len(self.labels)))
        if cfg.result_reach is not None:
            r = self.labels.index("RESULT")
            path = reach_result(path, probs[:, r], words, clauses, r, cfg.result_reach)
        sections = spans_from_words(text, words, [self.labels[k] for k in path])
        chosen = probs[np.arange(len(path)), path]
        w = 0
        for span in sections:  # confidence: the mean probability of the span's label over its words
            n = 0
            total = 0.0
            while w < len(words) and words[w][1] <= span["end"]:
                total += float(chosen[w])
                n += 1
                w += 1
            span["confidence"] = round(total / max(n, 1), 4)
        found = {s["label"] for s in sections}
        if cfg.fact_bias:
            clause_logits = clause_logits + np.array([cfg.fact_bias.get(fact, 0.0) for fact in cfg.facts])
        quality = quality_from_clauses(text, clauses, clause_logits, sections, list(cfg.facts), cfg.evidence_extend)
        out = {
            "sections": sections,
            "result_quality": quality,
            "missing_sections": [label for label in SCORED_SECTIONS if label not in found],
        }
        if story is not None:
            out["story"] = decode_story(text, clauses, *story, self.story_heads.step_thresholds if self.story_heads is not None else None)
        return out


def _read_failed(err: Exception) -> dict:
    return {"error": f"reading the answer failed: {type(err).__name__}: {err}"}


def answer_problem(answer: object) -> str | None:
    """Why ``answer`` cannot be scored, or None when it can."""
    if answer is None or (isinstance(answer, float) and np.isnan(answer)):
        return "expected a non-empty text answer, found a missing value"
    if not isinstance(answer, str):
        return f"expected a non-empty text answer, found {type(answer).__name__} {answer!r:.40}"
    if not answer.strip():
        return "expected a non-empty text answer, found an empty string"
    words = len(answer.split())
    if words > MAX_ANSWER_WORDS:
        return f"expected an answer of at most {MAX_ANSWER_WORDS:,} words (about 35 minutes of speech), found {words:,} words"
    return None


def _row_id(row: object, i: int):
    rid = row.get("id") if isinstance(row, dict) else None
    if rid is None or (isinstance(rid, float) and np.isnan(rid)):
        return i
    return rid.item() if isinstance(rid, np.generic) else rid


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
