import numpy as np

from star_scorer.clause_text import FACT_TEXT_CONFIG, FACT_TEXT_WEIGHTS, FactText
from star_scorer.labels import FACTS
from star_scorer.text import clause_spans

TECHNICAL = ["recall rose to {}", "latency fell to {} ms", "the error rate dropped to {}", "precision reached {}"]
BUSINESS = ["complaints came down by {} a week", "support tickets fell by {}", "churn fell by {} customers", "refunds dropped by {}"]
VAGUE = ["everyone was really happy", "it was seen as a big win", "people liked it a lot", "the team felt great"]


def _records() -> list[dict]:
    """Answers whose Result is a technical clause, a business clause and a vague one, each fact's evidence its clause."""
    out = []
    for i in range(24):
        t, b, v = (TECHNICAL[i % 4].format(i + 3), BUSINESS[(i + 1) % 4].format(i + 5), VAGUE[(i + 2) % 4])
        action = "I rebuilt the pipeline."
        result = f"In the end {t}, and {b}, and {v}." if i % 3 else f"In the end {t}, and {v}."
        answer = f"{action} {result}"
        facts = {"T": True, "B": bool(i % 3), "NB": bool(i % 3), "V": True}
        evidence = {"T": t, "V": v} | ({"B": b, "NB": b} if i % 3 else {})
        out.append({"answer": answer, "segments": [{"label": "ACTION", "text": action}, {"label": "RESULT", "text": result}],
                    "result_facts": facts, "result_evidence": evidence, "result_quality": 4 if i % 3 else 2})
    return out


def test_fact_text_reads_each_fact_in_its_own_clause_and_keeps_its_logits_through_save_and_load(tmp_path):
    text = FactText.fit(_records(), clause_spans)
    answer = "I retrained it. In the end recall rose to 91, and support tickets fell by 30, and everyone was really happy."
    clauses = clause_spans(answer)
    (logits,) = text.logits([answer], [clauses])
    assert logits.shape == (len(clauses), len(FACTS))
    by_clause = {answer[a:b].strip(" ,."): dict(zip(FACTS, row)) for (a, b), row in zip(clauses, logits)}
    technical = next(v for k, v in by_clause.items() if "recall" in k)
    business = next(v for k, v in by_clause.items() if "tickets" in k)
    vague = next(v for k, v in by_clause.items() if "happy" in k)
    assert technical["T"] > business["T"] and technical["T"] > vague["T"]
    assert business["B"] > technical["B"] and business["NB"] > vague["NB"]
    assert vague["V"] > technical["V"] and vague["V"] > business["V"]

    text.weight = 0.5
    text.save(tmp_path)
    assert (tmp_path / FACT_TEXT_WEIGHTS).exists() and (tmp_path / FACT_TEXT_CONFIG).exists()
    loaded = FactText.load(tmp_path)
    assert loaded.weight == 0.5
    heads = np.ones((len(clauses), len(FACTS)))
    (combined,) = loaded.combine([heads], [answer], [clauses])
    assert abs(combined - (1.0 + 0.5 * logits)).max() < 1e-4  # float32 on disk
    (unweighted,) = loaded.combine([heads], [answer], [clauses], weight=0.0)
    assert (unweighted == heads).all()
    FactText.remove(tmp_path)
    assert FactText.load(tmp_path) is None


def test_fact_text_needs_words_in_two_clauses():
    assert FactText.fit([], clause_spans) is None
    one = _records()[:1]
    assert FactText.fit([{**one[0], "answer": "Done.", "segments": [{"label": "RESULT", "text": "Done."}],
                          "result_evidence": {}}], clause_spans) is None
