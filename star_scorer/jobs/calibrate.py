"""Choose decoding settings on dev: the model runs once, decoding is re-run per setting.

Two things are picked, by section macro-F1 on the dev split (model-selection data)
and saved in the model's config:
- switch penalties: the cost of a section change mid-clause, after a comma and
  after a sentence end (gold sections follow sentences and clauses), then the
  cost before "and"/"so" in unpunctuated speech, where transcripts open sections;
- label biases: log-prior offsets for the rare labels (TASK, OTHER), which a
  cross-entropy-trained head under-predicts, and for RESULT: a Result read as
  ACTION scores 0 where the gold says 2-4, the costliest score error there is
  (v20: +0.25 left dev's sections as they were, +0.001, and lifted QWK on dev
  +0.014 and on realworld +0.012, docs/experiments.md session 17).
Coordinate search: penalties, then biases. The score is always the rubric over
the facts of the clauses decoded as RESULT; what is chosen for it is one logit
offset per fact (a clause head trained on sparse positive clauses is shy of
saying a fact holds). T, B and NB are chosen together, for the score they give:
the offsets whose rubric scores have the best QWK summed over dev and, when the
run names one, a set of real answers (``fact_calibration_file``: never trained
on), bagged over bootstrap draws of the sets. Per-fact F1 was flat on dev, so its argmax moved from run to run; on the
real answers a B offset 1.0 higher than dev's F1 choice lifted QWK by 0.056, and
halves of them choosing for the other half gained 0.022 on average over dev
alone (``scripts/cv_score_offsets.py``, docs/experiments.md session 11). With them, the
result reach (``decode.reach_result``: in an answer whose path has no RESULT, the
clauses at least this sure of it are its Result): each reach of ``RESULT_REACH``
gets its own offsets and the reach whose QWK sum is best is kept (off on ties). Around both, the weight of the
fact text model's clause logits (``clause_text.FactText``, when the scorer has one): each weight of
``FACT_TEXT_WEIGHTS`` gets its own reach and offsets, the best QWK sum wins (the smaller weight on ties; 0 leaves the
model out). V, which
never moves the score, keeps its best F1 over the same sets. Last, how far a
fact's evidence reaches over neighbouring clauses, by evidence character F1 (on
the real answers when given).
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
from pathlib import Path

import numpy as np

from star_scorer.clause_text import FactText
from star_scorer.data import load_jsonl
from star_scorer.decode import fact_clauses, result_clauses, sentence_best, sentence_ids
from star_scorer.intervals import qwk_of_confusions
from star_scorer.labels import NUM_SCORES
from star_scorer.metrics import evidence_metrics, facts_metrics, section_metrics
from star_scorer.modeling import ScorerConfig
from star_scorer.paths import DATA_DIR, PROJ_ROOT
from star_scorer.rewrites import NB_OFF_AT_LEAST, unquantified
from star_scorer.scorer import StarScorer, resolve_model_dir
from star_scorer.text import clause_spans

logger = logging.getLogger(__name__)

INSIDE = (0.5, 1.0, 2.0, 4.0, 8.0)
CLAUSE = (0.25, 0.5, 1.0, 2.0)
SENTENCE = (0.0, 0.1, 0.5)
CONNECTIVE = (None, 0.5, 1.0, 2.0)
OPENER = (None, 0.5, 1.0, 2.0)
TASK_BIAS = (-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 3.0)
OTHER_BIAS = (-0.5, 0.0, 0.5, 1.0)
RESULT_BIAS = (0.0, 0.25, 0.5, 1.0)
EVIDENCE_EXTEND = (0.3, 0.5, 0.6, 0.7, 0.8, 1.01)  # 1.01: never beyond the best clause
FACT_BIAS = (-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5)
SCORE_BIAS = (-2.0, -1.5) + FACT_BIAS  # lower NB offsets, for the number check
RESULT_REACH = (None, 0.4, 0.3, 0.2)  # decode.reach_result: in an answer with no RESULT, clauses this sure of it (None: off)
RESAMPLES = 100  # bootstrap draws whose choices of the score's offsets are bagged
FACT_TEXT_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)  # what the fact text model's clause logits weigh beside the heads'


def word_logits(fact_text: FactText | None, texts: list[str], raw: dict) -> dict | None:
    """Per answer, the fact text model's (clauses, facts) logits for the clauses of its ``raw`` outputs."""
    if fact_text is None:
        return None
    order = sorted(raw)
    return dict(zip(order, fact_text.logits([texts[i] for i in order], [raw[i][1] for i in order])))


def with_word_logits(raw: dict, words: dict | None, weight: float) -> dict:
    """``raw`` outputs whose clause fact logits have ``words`` added at ``weight``."""
    if words is None or weight == 0:
        return raw
    return {i: (*r[:3], np.asarray(r[3], dtype=np.float64) + weight * words[i][: len(r[3])], *r[4:]) for i, r in raw.items()}


def calibrate_decoding(scorer: StarScorer, records: list[dict], max_windows: int = 32, fact_records: list[dict] | None = None,
                       number_check_at_least: float = 0.0) -> dict:
    """Set the best decoding settings on ``scorer.config``; return the search's figures.

    Sections are calibrated on ``records``; the fact offsets and the evidence reach on
    ``fact_records`` when given (answers whose raters' reading of the rubric the scores
    should follow), else on ``records`` too. The score's offsets are chosen among those that pass the number check
    on ``records``' rewrites at ``number_check_at_least`` (0: any; the check's figure is reported either way).
    """
    texts = [r["answer"] for r in records]
    fact_text, scorer.fact_text = scorer.fact_text, None  # the heads' clause logits; the words' are added per weight below
    raw = dict(scorer.raw_outputs(texts, max_windows))
    cfg = scorer.config

    def score() -> float:
        preds = [scorer.decode(texts[i], *raw[i]) for i in range(len(texts))]
        return section_metrics(records, preds)["macro_f1"]

    start = score()
    tried = []

    def search_penalties() -> None:
        best = (score(), (cfg.switch_penalty, cfg.clause_penalty, cfg.sentence_penalty))
        for p in itertools.product(INSIDE, CLAUSE, SENTENCE):
            if p[2] <= p[1] <= p[0]:
                cfg.switch_penalty, cfg.clause_penalty, cfg.sentence_penalty = p
                f = score()
                tried.append({"inside": p[0], "clause": p[1], "sentence": p[2], "label_bias": dict(cfg.label_bias), "macro_f1": f})
                best = max(best, (f, p))
        cfg.switch_penalty, cfg.clause_penalty, cfg.sentence_penalty = best[1]

    def search_one(name: str, values: tuple) -> None:
        """One decoding setting over ``values``, the others held: keep the best (the current value on ties)."""
        best = (score(), getattr(cfg, name))
        for value in values:
            setattr(cfg, name, value)
            f = score()
            tried.append({name.removesuffix("_penalty"): value, "macro_f1": f})
            best = max(best, (f, value), key=lambda b: b[0])
        setattr(cfg, name, best[1])

    def try_bias(bias: dict, best: tuple) -> tuple:
        """(dev macro-F1, biases) of ``bias`` or of ``best``, whichever is higher (``best`` on ties)."""
        cfg.label_bias = bias
        f = score()
        tried.append({"label_bias": dict(bias), "macro_f1": f})
        return max(best, (f, bias), key=lambda b: b[0])

    def search_biases() -> None:
        best = (score(), dict(cfg.label_bias))
        for task, other in itertools.product(TASK_BIAS, OTHER_BIAS):
            best = try_bias({"TASK": task, "OTHER": other}, best)
        held = best[1]  # then RESULT's on the best of those (on v20 the joint grid, four times the passes, chose the same)
        for result in RESULT_BIAS:
            best = try_bias(held | {"RESULT": result}, best)
        cfg.label_bias = best[1]

    search_penalties()
    search_one("connective_penalty", CONNECTIVE)
    search_one("opener_penalty", OPENER)
    search_biases()
    final = score()
    fact_sets = [(records, texts, raw)]
    if fact_records is not None:
        fact_texts = [r["answer"] for r in fact_records]
        fact_sets.append((fact_records, fact_texts, dict(scorer.raw_outputs(fact_texts, max_windows))))
    cfg.fact_bias = {}
    copies = unquantified_copies(fact_sets[0][0])
    copy_texts = [c["answer"] for _, c in copies]
    copies_raw = dict(scorer.raw_outputs(copy_texts, max_windows))
    weights = FACT_TEXT_WEIGHTS if fact_text is not None else (0.0,)
    words_of = [word_logits(fact_text, txts, rw) for _, txts, rw in fact_sets] + [word_logits(fact_text, copy_texts, copies_raw)]
    by_weight = {}
    for weight in weights:  # the fact text model's weight, chosen with the reach and the offsets: each its own
        sets = [(recs, txts, with_word_logits(rw, words, weight)) for (recs, txts, rw), words in zip(fact_sets, words_of)]
        copied = with_word_logits(copies_raw, words_of[-1], weight)
        by_reach = {}
        for reach in RESULT_REACH:
            cfg.result_reach = reach
            max_logits = [result_fact_logits(scorer, txts, rw) for _, txts, rw in sets]
            by_reach[reach] = ([([r["result_quality"] for r in recs], *m) for (recs, _, _), m in zip(sets, max_logits)],
                               number_check_inputs(scorer, sets[0][0], max_logits[0], max_windows, copied)[0])
        reach_tried = {}
        by_weight[weight] = (choose_reach(by_reach, list(cfg.facts), number_check_at_least, reach_tried), reach_tried, sets)
    weight = max(weights, key=lambda w: (by_weight[w][0][2], -w))  # ties to the smaller weight; 0 leaves the words out
    (cfg.result_reach, score_offsets, score_qwk, check_share), reach_tried, fact_sets = by_weight[weight]
    raw = fact_sets[0][2]
    if fact_text is not None:
        fact_text.weight = weight
        scorer.fact_text = fact_text if weight > 0 else None
        logger.info("fact text model: weight %s chosen with the offsets (QWK sums %s)", weight,
                    {w: round(v[0][2], 4) for w, v in by_weight.items()})
    logger.info("result reach %s, score offsets %s: QWK summed over the sets %.4f (by reach: %s), number check on dev %s", cfg.result_reach,
                score_offsets, score_qwk, {k: round(v["qwk"], 4) for k, v in reach_tried.items()},
                "n/a" if check_share is None else f"{check_share:.3f} ({len(copies)} copies)")
    final_sections = score()
    fact_f1 = {}
    for bias in FACT_BIAS:
        cfg.fact_bias = {fact: bias for fact in cfg.facts}
        golds, preds = [], []
        for recs, txts, rw in fact_sets:
            golds += [r["result_facts"] for r in recs]
            preds += [scorer.decode(txts[i], *rw[i])["result_quality"]["facts"] for i in range(len(txts))]
        fact_f1[bias] = facts_metrics(golds, preds)
    cfg.fact_bias = {fact: max(FACT_BIAS, key=lambda b, f=fact: (fact_f1[b][f]["f1"], -abs(b))) for fact in cfg.facts} | score_offsets
    evidence = {}  # evidence char F1 summed over the sets, like the score's offsets: our writers' and real raters' spans
    for extend in EVIDENCE_EXTEND:
        cfg.evidence_extend = extend
        evidence[extend] = sum(evidence_metrics(recs, [scorer.decode(txts[i], *rw[i]) for i in range(len(txts))])["char_f1"]
                               for recs, txts, rw in fact_sets)
    cfg.evidence_extend = max(evidence, key=evidence.get)
    chosen = {"inside": cfg.switch_penalty, "clause": cfg.clause_penalty, "sentence": cfg.sentence_penalty,
              "connective": cfg.connective_penalty, "opener": cfg.opener_penalty, "label_bias": cfg.label_bias, "fact_bias": cfg.fact_bias,
              "result_reach": cfg.result_reach, "evidence_extend": cfg.evidence_extend,
              "fact_text_weight": weight if fact_text is not None else None}
    logger.info("decoding %s: dev section macro-F1 %.4f (%.4f before calibration, %.4f before the reach)", chosen, final_sections, start, final)
    return {"best": chosen, "dev_macro_f1": final_sections, "dev_macro_f1_before": start, "dev_macro_f1_before_reach": final,
            "result_reach": {str(k): v for k, v in reach_tried.items()}, "evidence_char_f1": evidence,
            "fact_f1_by_bias": {b: {f: v["f1"] for f, v in m.items()} for b, m in fact_f1.items()},
            "score_offsets_qwk": score_qwk, "fact_text_weight": weight if fact_text is not None else None,
            "fact_text_tried": {w: v[0][2] for w, v in by_weight.items()} if fact_text is not None else {}, "number_check": {"copies": len(copies), "nb_off": check_share, "at_least": number_check_at_least},
            "tried": tried}


SCORE_FACTS = ("T", "B", "NB")  # the facts the rubric's score reads


def result_fact_logits(scorer: StarScorer, texts: list[str], raw: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per answer, each fact's best logit over the clauses decoded as RESULT that can make it true
    (``decode.fact_clauses``; offsets at 0), whether any clause is RESULT, and NB's support: per RESULT clause that
    states a number, its NB logit and the best B logit of its sentence (NB holds where both clear their offsets).
    That is what ``decode`` thresholds (a fact holds when logit + offset >= 0)."""
    facts = list(scorer.config.facts)
    logits = np.full((len(texts), len(facts)), -np.inf)
    has = np.zeros(len(texts), dtype=bool)
    nb_support = np.empty(len(texts), dtype=object)
    nb, b = facts.index("NB"), facts.index("B")
    for i, text in enumerate(texts):
        _, clauses, _, clause_logits = raw[i][:4]
        sections = scorer.decode(text, *raw[i])["sections"]
        rows = np.flatnonzero(result_clauses(clauses, sections, len(text)))
        nb_support[i] = np.zeros((0, 2))
        if len(rows):
            has[i] = True
            found = np.asarray(clause_logits, dtype=float)[: len(clauses)]
            allowed = np.where(fact_clauses(text, clauses, facts), found, -np.inf)
            logits[i] = allowed[rows].max(0)
            pairs = np.stack([allowed[rows, nb], sentence_best(found[:, b], sentence_ids(text, clauses), rows)], 1)
            nb_support[i] = pairs[np.isfinite(pairs[:, 0])]
    return logits, has, nb_support


def choose_score_offsets(sets: list[tuple], facts: list[str], grid: tuple[float, ...] = SCORE_BIAS,
                         check: tuple | None = None, at_least: float = NB_OFF_AT_LEAST, resamples: int = RESAMPLES,
                         seed: int = 0) -> tuple[dict[str, float], float, float | None]:
    """T, B and NB offsets from ``grid`` whose rubric scores give the best QWK summed over ``sets``
    ((gold scores, *``result_fact_logits``) each; without NB's support, NB is read from ``logits``); ties go to the
    smaller offsets. With ``resamples``, the best is taken on that many bootstrap draws of every set and each
    offset is their median (the grid's nearest eligible point; ties to the better full-sample QWK): the argmax of a
    QWK over 150 real answers moves with a handful of them, and the bagged choice held out slightly better on
    realworld halves (+0.0045 over six models, 10 folds each, ``scripts/cv_score_offsets.py``, docs/experiments.md
    session 18). With ``check``
    (``result_fact_logits`` of answers, then of their ``rewrites.unquantified`` copies), only offsets under which
    taking the numbers out turns NB off on at least ``at_least`` of the answers that had it are eligible (the best
    share when none reach it; 0: any). Returns them, the full-sample QWK sum and the chosen offsets' share."""
    combos = list(itertools.product(grid, repeat=len(SCORE_FACTS)))
    offsets = [dict(zip(SCORE_FACTS, values)) for values in combos]
    shares = [number_check(check[:3], check[3:], o, facts) if check is not None and at_least > 0 else None for o in offsets]
    passes = np.array([min(share if share is not None else 1.0, at_least) for share in shares])  # passing shares count the same
    eligible = passes >= passes.max() - 1e-9
    size = np.array([sum(abs(v) for v in values) for values in combos])
    scored = [(np.asarray(gold), np.stack([rubric_scores(logits, has, o, facts, *support) for o in offsets]))
              for gold, logits, has, *support in sets]

    def summed(weights: list | None = None) -> np.ndarray:
        return sum(qwk_rows(gold, rows, w) for (gold, rows), w in zip(scored, weights or [None] * len(scored)))

    def best(total: np.ndarray, among: np.ndarray) -> int:
        return int(np.lexsort((size, -np.round(np.where(among, total, -np.inf), 9)))[0])

    total = summed()
    chosen = best(total, eligible)
    if resamples:
        rng = np.random.default_rng(seed)
        picks = np.array([combos[best(summed([rng.multinomial(len(g), np.full(len(g), 1 / len(g))) for g, _ in scored]), eligible)]
                          for _ in range(resamples)])
        distance = np.abs(np.array(combos) - np.median(picks, 0)).sum(1)
        chosen = best(total, eligible & (distance <= distance[eligible].min() + 1e-9))
    share = shares[chosen] if check is None or at_least > 0 else number_check(check[:3], check[3:], offsets[chosen], facts)
    return offsets[chosen], float(total[chosen]), share


def choose_reach(by_reach: dict, facts: list[str], at_least: float = 0.0, tried: dict | None = None) -> tuple:
    """(reach, offsets, QWK sum, number-check share): of ``by_reach`` (reach -> (``choose_score_offsets``' sets,
    its number check or None), each read under that ``result_reach``), the reach whose own chosen offsets give the
    best QWK summed over the sets; ties to the earlier reach (``RESULT_REACH`` puts off first). ``tried`` gets every
    reach's choice."""
    best = None
    for reach, (sets, check) in by_reach.items():
        offsets, qwk, share = choose_score_offsets(sets, facts, check=check, at_least=at_least)
        if tried is not None:
            tried[reach] = {"offsets": offsets, "qwk": qwk, "number_check": share}
        if best is None or qwk > best[2] + 1e-9:
            best = (reach, offsets, qwk, share)
    return best


def qwk_rows(gold: np.ndarray, rows: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Quadratic-weighted kappa of each row of ``rows`` (scores, one row per setting) against ``gold``, the answers
    counted ``weights`` times (a bootstrap draw): ``cohen_kappa_score(..., weights="quadratic")`` over 0-4 at once."""
    weights = np.ones(len(gold)) if weights is None else np.asarray(weights, dtype=float)
    observed = np.zeros((len(rows), NUM_SCORES, NUM_SCORES))
    for g in range(NUM_SCORES):
        for p in range(NUM_SCORES):
            observed[:, g, p] = ((rows == p) & (gold == g)) @ weights
    return qwk_of_confusions(observed)


def unquantified_copies(records: list[dict]) -> list[tuple[int, dict]]:
    """(index, copy) of the ``records`` that carry their writers' rewrites without the effect's number."""
    return [(i, c) for i, r in enumerate(records) if (c := unquantified(r)) is not None]


def number_check_inputs(scorer: StarScorer, records: list[dict], logits: tuple, max_windows: int = 32,
                        copies_raw: dict | None = None) -> tuple[tuple | None, int]:
    """``result_fact_logits`` of the answers that carry their writers' rewrites without the effect's number (taken
    from ``logits``, those of all ``records``), then of those copies (``unquantified_copies``; ``copies_raw``: the
    model's outputs for them when already at hand); and how many copies. None when no answer has a rewrite."""
    rewritten = unquantified_copies(records)
    if not rewritten:
        return None, 0
    rows = np.array([i for i, _ in rewritten])
    texts = [c["answer"] for _, c in rewritten]
    raw = copies_raw if copies_raw is not None else dict(scorer.raw_outputs(texts, max_windows))
    return (*(x[rows] for x in logits), *result_fact_logits(scorer, texts, raw)), len(rewritten)


def number_check(answers: tuple, copies: tuple, offsets: dict[str, float], facts: list[str]) -> float | None:
    """Of the answers with NB under ``offsets`` (``answers``: ``result_fact_logits`` of them), the share whose copy
    without its numbers (``copies``, the same for ``rewrites.unquantified``, row by row) has NB off: the robustness
    check's figure. None when no answer has NB."""
    had = holding(*answers, offsets, facts)[2]
    if not had.any():
        return None
    return float(1.0 - holding(*copies, offsets, facts)[2][had].mean())


def holding(logits: np.ndarray, has: np.ndarray, nb_support: np.ndarray | None, offsets: dict[str, float],
            facts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Whether T, B and NB hold in each answer at ``result_fact_logits`` + its offset >= 0 (NB only with B; with
    ``nb_support``, only in a clause whose NB and whose sentence's B both hold, as ``decode`` decides it)."""
    t, b, nb = (logits[:, facts.index(f)] + offsets[f] >= 0 for f in SCORE_FACTS)
    if nb_support is not None:
        nb = np.array([bool(np.any((p[:, 0] + offsets["NB"] >= 0) & (p[:, 1] + offsets["B"] >= 0))) for p in nb_support], dtype=bool)
    return t & has, b & has, nb & b & has


def rubric_scores(logits: np.ndarray, has: np.ndarray, offsets: dict[str, float], facts: list[str],
                  nb_support: np.ndarray | None = None) -> np.ndarray:
    """``labels.rubric_score`` over many answers at once: each answer's score from the facts that ``holding``
    says hold, 0 where no clause is RESULT."""
    t, b, nb = holding(logits, has, nb_support, offsets, facts)
    return np.where(has, np.where(b & nb, 3 + t, np.where(t & b, 3, np.where(t | b, 2, 1))), 0)


DECODING_FIELDS = ("clause_penalty", "sentence_penalty", "connective_penalty", "opener_penalty", "label_bias", "fact_bias", "result_reach",
                   "evidence_extend")


def recalibrate(model: str | Path, dev: str | Path | None = None, facts: str | Path | None = None, number_check: float = 0.0,
                fit_fact_text: bool = False) -> dict:
    """Choose a trained model's decoding settings again, from the same start as ``star_scorer.jobs.train``, and save them.

    For a model trained before a decoding option existed, or to re-select on other dev data.
    The weights are untouched; ``scorer_config.json`` and ``decoding_calibration.json`` are rewritten, and the fact
    text model's weight chosen again (``fit_fact_text``: first fitted on the model's training file, as ``make train`` does).
    """
    directory = resolve_model_dir(model)
    scorer = StarScorer.load(directory, precision="fp32")
    cfg = scorer.config
    recorded = cfg.training or {}
    dev = dev or recorded.get("data", {}).get("dev_file") or DATA_DIR / "dev.jsonl"
    defaults = ScorerConfig()
    for name in DECODING_FIELDS:
        setattr(cfg, name, getattr(defaults, name))
    cfg.switch_penalty = recorded.get("model", {}).get("switch_penalty", defaults.switch_penalty)
    facts = facts or recorded.get("run", {}).get("fact_calibration_file") or None
    if facts and not Path(facts).exists():  # a training run's setting is relative to the project root
        facts = PROJ_ROOT / facts
    fact_records = load_jsonl(facts) if facts and Path(facts).exists() else None
    if fit_fact_text:
        train = recorded.get("data", {}).get("train_file") or DATA_DIR / "train.jsonl"
        scorer.fact_text = FactText.fit(load_jsonl(train if Path(train).exists() else PROJ_ROOT / train), clause_spans)
    result = calibrate_decoding(scorer, load_jsonl(dev), fact_records=fact_records, number_check_at_least=number_check)
    cfg.save(directory)
    if scorer.fact_text is not None:
        scorer.fact_text.save(directory)
    else:  # chosen at weight 0, or never fitted: no stale model left behind
        FactText.remove(directory)
    (directory / "decoding_calibration.json").write_text(json.dumps(result, indent=2, default=str))
    return {"model": str(directory), "dev": str(dev), **{k: result[k] for k in ("best", "dev_macro_f1", "dev_macro_f1_before")}}


def _register(directory: Path, result: dict, name: str) -> dict:
    import mlflow

    from star_scorer import tracking
    from star_scorer.jobs import promote, register

    tracking.setup("star-scorer")
    with mlflow.start_run(run_name=f"{directory.name}-recalibrated") as run:
        mlflow.log_params({f"decoding.{k}": str(v) for k, v in result["best"].items()} | {"model_dir": str(directory)})
        mlflow.log_metrics({"dev_section_macro_f1": result["dev_macro_f1"], "dev_section_macro_f1_before": result["dev_macro_f1_before"]})
        registered = {"run_id": run.info.run_id, **register.log_scorer(directory, name)}
    sets = [str(p) for p in (promote.REALWORLD, Path(result["dev"])) if p.exists()]
    decision = promote.run(name, data=sets)
    print("\n".join(promote.summary_lines(decision)))
    return registered | {"promotion": {k: decision[k] for k in ("promoted", "champion_before", "champion", "reason")}}


def main(argv: list[str] | None = None) -> dict:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(description="Choose a trained STAR scorer's decoding settings again on dev.")
    parser.add_argument("--model", required=True, help="a model folder")
    parser.add_argument("--dev", default=None, help="labelled JSONL; default: the dev file the model was trained with")
    parser.add_argument("--facts", default=None, help="labelled JSONL the fact offsets are chosen on; default: the model's own setting, else --dev")
    parser.add_argument("--register", default="", help="also log the recalibrated model to MLflow, register it under this name as @challenger and promote it by star_scorer.jobs.promote's rule")
    parser.add_argument("--number-check", type=float, default=0.0,
                        help=f"choose the score's offsets among those that turn NB off on at least this share of dev's copies without "
                             f"their numbers (issue 13's check: {NB_OFF_AT_LEAST}); 0: any")
    parser.add_argument("--fit-fact-text", action="store_true",
                        help="fit the fact text model on the model's training file first (as make train does), then choose its weight")
    args = parser.parse_args(argv)
    result = recalibrate(args.model, args.dev, args.facts, args.number_check, args.fit_fact_text)
    if args.register:
        result |= _register(Path(result["model"]), result, args.register)
    print(json.dumps(result, indent=2, default=str))
    return result


if __name__ == "__main__":
    main()
