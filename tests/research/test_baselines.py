import json


def test_baselines_fit_and_score(records, tmp_path):
    from star_scorer.paths import data_name
    from star_scorer.research.baselines import rule_score, run, sentence_units

    text = "we fixed it then latency fell. Good! and more words here"
    assert [text[s:e] for s, e in sentence_units(text)] == ["we fixed it then latency fell.", "Good!", "and more words here"]
    assert rule_score("")[0] == 0
    assert rule_score("Everyone was happy with it.")[0] == 1
    assert rule_score("Recall went from 0.61 to 0.74, and the queue shrank by about 40% for the support team.")[0] == 4
    path = tmp_path / "fx.jsonl"
    copies = [dict(r, id=f"{r['id']}-{k}") for k in range(3) for r in records]
    path.write_text("".join(json.dumps(r) + "\n" for r in copies))
    out = run(str(path), [str(path)], tmp_path / "b")
    name = data_name(path)  # <folder>-<stem> outside data/, as evaluate reads it
    figures = out[name]["tfidf-lr sentences + tfidf-lr score"]
    assert 0.0 <= figures["section_macro_f1"] <= 1.0
    assert (tmp_path / "b" / f"{name}.json").exists()
    assert run(str(path), [str(path)], tmp_path / "b", skip_existing=True) == {}  # make evaluate runs it before each report
