"""scikit-learn baselines, run by ``make baselines``; their figures sit beside the model's in reports.

- sections: TF-IDF + logistic regression per sentence, with position features;
- result quality: TF-IDF + logistic regression on the whole answer, and a
  transparent rule scorer (numbers, metric and business words, vague phrases)
  reading the Result sentences the section baseline finds.

Predictions go through the same metrics code as the model. Figures are written
to reports/baselines/<split>.json, where star_scorer.jobs.evaluate picks them up.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
from pathlib import Path

import numpy as np
from scipy.sparse import csr_matrix, hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from star_scorer.labels import FACTS, SECTION_LABELS, rubric_score
from star_scorer.metrics import evaluate_predictions
from star_scorer.paths import DATA_DIR, REPORTS_DIR, data_name
from star_scorer.text import char_labels

logger = logging.getLogger(__name__)

_SENT = re.compile(r"[^.!?]+(?:[.!?]+|$)")
MAX_UNIT_WORDS = 25  # unpunctuated transcripts are cut into chunks of this many words


def sentence_units(text: str) -> list[tuple[int, int]]:
    """Sentence spans; over-long unpunctuated stretches are chunked by word count."""
    units = []
    for m in _SENT.finditer(text):
        words = [(w.start() + m.start(), w.end() + m.start()) for w in re.finditer(r"\S+", m.group())]
        for i in range(0, len(words), MAX_UNIT_WORDS):
            chunk = words[i : i + MAX_UNIT_WORDS]
            units.append((chunk[0][0], chunk[-1][1]))
    return units


def _position_features(units: list[tuple[int, int]], n_chars: int) -> np.ndarray:
    rows = []
    for i, (start, _) in enumerate(units):
        rel = start / max(n_chars, 1)
        rows.append([rel, rel**2, float(i == 0), float(i == len(units) - 1), min(len(units), 40) / 40])
    return np.asarray(rows)


class SentenceSectionBaseline:
    def __init__(self) -> None:
        self.vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, lowercase=True)
        self.clf = LogisticRegression(max_iter=2000, C=4.0, class_weight="balanced")

    def _units(self, records: list[dict]):
        texts, pos, owners, spans = [], [], [], []
        for r_i, rec in enumerate(records):
            units = sentence_units(rec["answer"])
            texts += [rec["answer"][s:e] for s, e in units]
            pos.append(_position_features(units, len(rec["answer"])))
            owners += [r_i] * len(units)
            spans += units
        return texts, np.vstack(pos), owners, spans

    def _matrix(self, texts, pos, fit: bool):
        x = self.vec.fit_transform(texts) if fit else self.vec.transform(texts)
        return hstack([x, csr_matrix(pos)]).tocsr()

    def fit(self, records: list[dict]) -> SentenceSectionBaseline:
        texts, pos, owners, spans = self._units(records)
        y = []
        for owner, (s, e) in zip(owners, spans):
            labs = char_labels(records[owner]["answer"], records[owner]["segments"])[s:e]
            labs = labs[labs >= 0]
            y.append(int(np.bincount(labs, minlength=len(SECTION_LABELS)).argmax()))
        self.clf.fit(self._matrix(texts, pos, fit=True), y)
        return self

    def predict(self, records: list[dict]) -> list[list[dict]]:
        texts, pos, owners, spans = self._units(records)
        labels = self.clf.predict(self._matrix(texts, pos, fit=False))
        out: list[list[dict]] = [[] for _ in records]
        for owner, (s, e), lab in zip(owners, spans, labels):
            text = records[owner]["answer"]
            out[owner].append({"label": SECTION_LABELS[lab], "start": s, "end": e, "text": text[s:e]})
        return out


class TfidfScoreBaseline:
    def __init__(self) -> None:
        self.vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
        self.clf = LogisticRegression(max_iter=2000, C=4.0)

    def fit(self, records: list[dict]) -> TfidfScoreBaseline:
        self.clf.fit(self.vec.fit_transform([r["answer"] for r in records]), [r["result_quality"] for r in records])
        return self

    def predict(self, records: list[dict]) -> list[int]:
        return [int(v) for v in self.clf.predict(self.vec.transform([r["answer"] for r in records]))]


_NUMBER = r"(\d|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|twelve|fifteen|twenty|thirty|forty|fifty|hundred|thousand|million|half|double|twice|triple)\b)"
_TECH = r"\b(f1|auc|precision|recall|accuracy|latency|throughput|error rate|p9\d|ms|milliseconds|uptime|downtime|rollback|rolled back|deployed|shipped|launched|went live|live|model|pipeline|service|released|fixed|closed|passed|approved)\b"
_BUSINESS = r"\b(revenue|cost|costs|saved|saving|savings|customers?|users?|clients?|churn|retention|conversion|tickets?|complaints?|hours?|days?|weeks?|queue|backlog|headcount|adopted|adoption|sales|orders|patients|students|team|budget|\$|dollars|euros|pounds|incidents?|signups?|renewed|revenue)\b"
_VAGUE = r"\b(success|successful|happy|great|big win|well received|improved a lot|went well|really good|appreciated|praised|promot\w+|thank\w*|proud|learned|lesson)\b"


def rule_score(result_text: str) -> tuple[int, dict[str, bool]]:
    """Transparent rubric facts from surface cues of the Result text, then the rubric's score."""
    if not result_text.strip():
        return 0, {f: False for f in FACTS}
    t = result_text.lower()
    has_num = re.search(_NUMBER, t) is not None
    tech = re.search(_TECH, t) is not None
    business = re.search(_BUSINESS, t) is not None
    facts = {
        "T": tech and has_num or bool(re.search(r"\b(deployed|shipped|went live|launched|rolled back)\b", t)),
        "B": business,
        "NB": business and has_num and re.search(_BUSINESS + r".{0,60}" + _NUMBER + "|" + _NUMBER + r".{0,60}" + _BUSINESS, t) is not None,
        "V": re.search(_VAGUE, t) is not None,
    }
    return rubric_score(True, facts), facts


def _rows(records, sections, scores, facts=None) -> list[dict]:
    return [
        {"sections": secs, "result_quality": {"score": sc, "facts": {f: float((fa or {}).get(f, False)) for f in FACTS}}, "error": None}
        for secs, sc, fa in zip(sections, scores, facts or [None] * len(records))
    ]


def rule_rows(records: list[dict], sections: list[list[dict]]) -> list[dict]:
    """Scorer-shaped rows: these sections, and the rule scorer's score and facts on their Result text."""
    rule = [rule_score(" ".join(s["text"] for s in secs if s["label"] == "RESULT")) for secs in sections]
    return _rows(records, sections, [r[0] for r in rule], [r[1] for r in rule])


def run(train_file: str, eval_files: list[str], out_dir: Path, skip_existing: bool = False) -> dict:
    from star_scorer.data import load_jsonl

    if skip_existing:
        eval_files = [path for path in eval_files if not (Path(out_dir) / f"{data_name(path)}.json").exists()]
        if not eval_files:
            return {}
    train = load_jsonl(train_file)
    sections_model = SentenceSectionBaseline().fit(train)
    score_model = TfidfScoreBaseline().fit(train)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = {}
    for path in eval_files:
        records = load_jsonl(path)
        secs = sections_model.predict(records)
        tfidf_scores = score_model.predict(records)
        blank = [[] for _ in records]
        sec_m = evaluate_predictions(records, _rows(records, secs, tfidf_scores))
        tfidf_m = evaluate_predictions(records, _rows(records, blank, tfidf_scores))
        rule_m = evaluate_predictions(records, rule_rows(records, secs))
        figures = {
            "tfidf-lr sentences + tfidf-lr score": {
                "section_macro_f1": sec_m["section_macro_f1"], "qwk": tfidf_m["qwk"],
                "exact": tfidf_m["result_quality"]["exact"], "within_one": tfidf_m["result_quality"]["within_one"],
            },
            "rule scorer (on baseline Result sentences)": {
                "section_macro_f1": None, "qwk": rule_m["qwk"],
                "exact": rule_m["result_quality"]["exact"], "within_one": rule_m["result_quality"]["within_one"],
                "facts_f1": {f: rule_m["facts"][f]["f1"] for f in FACTS},
            },
        }
        if any(r.get("story_type") for r in records):  # issue 17: story type, competency and steps from the words alone
            from star_scorer.jobs.fit_story import baselines as story_baselines
            from star_scorer.labels import STORY_TYPES
            from star_scorer.text import clause_spans

            figures["tfidf-lr story"] = story_baselines(train, [r for r in records if r.get("story_type") in STORY_TYPES], clause_spans)
        (out_dir / f"{data_name(path)}.json").write_text(json.dumps(figures, indent=2))
        results[data_name(path)] = figures
        logger.info("%s: %s", path, json.dumps(figures))
    return results


def main(argv: list[str] | None = None) -> dict:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(description="Fit the scikit-learn baselines and score them on dev and test.")
    parser.add_argument("--train", default=str(DATA_DIR / "train.jsonl"))
    parser.add_argument("--eval", nargs="+", default=[str(DATA_DIR / "dev.jsonl"), str(DATA_DIR / "test.jsonl")])
    parser.add_argument("--out", type=Path, default=REPORTS_DIR / "baselines")
    parser.add_argument("--skip-existing", action="store_true", help="only the eval files without figures under --out yet")
    args = parser.parse_args(argv)
    results = run(args.train, args.eval, args.out, args.skip_existing)
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
