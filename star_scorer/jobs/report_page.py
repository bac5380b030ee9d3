"""One self-contained HTML page of a model's evaluation on one labelled set (``star_scorer.jobs.report`` and
``evaluate --format html`` write it): the figures with bootstrap 95% intervals beside the champion's, per-label
tables and slices, plots inlined as base64 PNGs, reliability, and an error gallery with the answers' spans coloured.

No network: CSS and the one script are inline; the script only marks ``document.body.dataset.imagesLoaded``
("yes" when every image has loaded) so a headless browser can check the page.
"""

from __future__ import annotations

import base64
import html
import io
import time
from pathlib import Path

import numpy as np

from star_scorer import intervals
from star_scorer.intervals import HEADLINE, Interval
from star_scorer.labels import FACTS, FAILURE_STEPS, NUM_SCORES, SECTION_LABELS, STAR_LABELS

FIGURE_NAMES = {"section_macro_f1": "section macro-F1 (S,T,A,R)", "qwk": "QWK", "exact": "exact", "within_one": "within one",
                "facts_f1": "facts F1 (mean of T, B, NB, V)", "evidence_char_f1": "evidence char F1"}
SLICE_KEYS = ("style", "domain", "competency", "story_type", "variant")  # record fields a slice is cut on, besides length
COLOURS = {"SITUATION": "#cfe2ff", "TASK": "#ffe5b4", "ACTION": "#d1f2d9", "RESULT": "#f8d0e0", "OTHER": "#e4e4e4"}
PLOT_COLOURS = {"this model": "#1f77b4", "champion": "#ff7f0e", "gold": "#7f7f7f"}
GALLERY = 8  # answers in the error gallery


def length_band(answer: str) -> str:
    words = len(answer.split())
    return "under-80" if words < 80 else "80-150" if words <= 150 else "151-400" if words <= 400 else "over-400"


def slice_groups(records: list[dict]) -> dict[str, list[int]]:
    """Answer indices per slice: each of ``SLICE_KEYS`` a record has, and the length band in words."""
    groups: dict[str, list[int]] = {}
    for i, rec in enumerate(records):
        for key in SLICE_KEYS:
            if rec.get(key):
                groups.setdefault(f"{key}={rec[key]}", []).append(i)
        groups.setdefault(f"words={length_band(rec['answer'])}", []).append(i)
    return dict(sorted(groups.items()))


def slice_intervals(records: list[dict], predictions: list[dict]) -> dict[str, dict]:
    """Section macro-F1, TASK F1 and QWK per slice, each with its bootstrap interval (resampled within the slice)."""
    out = {}
    for name, idx in slice_groups(records).items():
        b = intervals.bootstrap([records[i] for i in idx], [predictions[i] for i in idx])
        out[name] = {"n_answers": len(idx), "section_macro_f1": b["section_macro_f1"], "task_f1": b["f1_TASK"], "qwk": b["qwk"]}
    return out


def set_figures(records: list[dict], predictions: list[dict]) -> dict:
    """Everything the page shows for one model's predictions."""
    return {"intervals": intervals.bootstrap(records, predictions), "calibration": intervals.calibration(records, predictions),
            "slices": slice_intervals(records, predictions)}


# -- plots --------------------------------------------------------------------------------------------------------

def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def data_uri(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    _plt().close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def confusion_figure(cm: list[list[int]], labels: list[str], title: str):
    plt = _plt()
    arr = np.asarray(cm, dtype=float)
    norm = arr / np.maximum(arr.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title(title)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, f"{norm[i, j]:.2f}", ha="center", va="center", color="white" if norm[i, j] > 0.5 else "black", fontsize=8)
    fig.tight_layout()
    return fig


def confusion_png(cm: list[list[int]], labels: list[str], title: str, path: Path) -> Path:
    fig = confusion_figure(cm, labels, title)
    fig.savefig(path, dpi=110)
    _plt().close(fig)
    return path


def slice_plot(slices: dict[str, dict], champion: dict[str, dict] | None):
    """Section macro-F1 and QWK per slice, 95% intervals as error bars, the champion's beside."""
    plt = _plt()
    names = list(slices)
    fig, axes = plt.subplots(1, 2, figsize=(10, 0.32 * len(names) + 1.6), sharey=True)
    y = np.arange(len(names))
    series = [("this model", slices)] + ([("champion", champion)] if champion else [])
    height = 0.8 / len(series)
    for ax, figure in zip(axes, ("section_macro_f1", "qwk")):
        for k, (label, data) in enumerate(series):
            ivs = [data[n][figure] for n in names]
            vals = np.array([iv.value for iv in ivs])
            err = np.array([[iv.value - iv.low for iv in ivs], [iv.high - iv.value for iv in ivs]]).clip(min=0)
            ax.barh(y + (k - (len(series) - 1) / 2) * height, vals, height=height, xerr=err, color=PLOT_COLOURS[label],
                    label=label, capsize=2, error_kw={"elinewidth": 0.8})
        ax.set_title(FIGURE_NAMES[figure])
        ax.set_xlim(min(0.0, *(data[n][figure].low for _, data in series for n in names)), 1.0)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(y, [f"{n} ({slices[n]['n_answers']})" for n in names], fontsize=8)
    axes[0].invert_yaxis()
    axes[1].legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def reliability_plot(calibration: dict, champion: dict | None):
    """Reliability diagrams: each fact's probability, and the score probabilities one-vs-rest."""
    plt = _plt()
    panels = [(f"fact {f}", calibration["facts"][f], champion["facts"][f] if champion else None) for f in FACTS]
    panels.append(("score, one-vs-rest", calibration["score"], champion["score"] if champion else None))
    fig, axes = plt.subplots(1, len(panels), figsize=(3.0 * len(panels), 3.4))
    for ax, (title, rel, champ) in zip(axes, panels):
        ax.plot([0, 1], [0, 1], color="#999", lw=0.8, ls="--")
        for label, r in (("this model", rel), ("champion", champ)):
            if not r or not r["bins"]:
                continue
            xs = [b["mean_probability"] for b in r["bins"]]
            ys = [b["frequency"] for b in r["bins"]]
            sizes = [12 + 80 * b["n"] / max(r["n"], 1) for b in r["bins"]]
            ax.plot(xs, ys, color=PLOT_COLOURS[label], lw=1, label=label)
            ax.scatter(xs, ys, s=sizes, color=PLOT_COLOURS[label])
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_aspect("equal")
        ax.set_xlabel("predicted probability")
        ax.set_title(f"{title}\nBrier {rel['brier']:.3f}, ECE {rel['ece']:.3f}", fontsize=9)
    axes[0].set_ylabel("observed frequency")
    axes[-1].legend(loc="upper left", fontsize=7)
    fig.tight_layout()
    return fig


def score_distribution_plot(gold: list[int], predicted: list[int], champion: list[int] | None):
    plt = _plt()
    series = [("gold", gold), ("this model", predicted)] + ([("champion", champion)] if champion is not None else [])
    fig, ax = plt.subplots(figsize=(6, 3.4))
    width = 0.8 / len(series)
    x = np.arange(NUM_SCORES)
    for k, (label, scores) in enumerate(series):
        counts = np.bincount(np.asarray(scores, dtype=int), minlength=NUM_SCORES)
        ax.bar(x + (k - (len(series) - 1) / 2) * width, counts, width=width, color=PLOT_COLOURS[label], label=label)
    ax.set_xticks(x)
    ax.set_xlabel("Result score")
    ax.set_ylabel("answers")
    ax.set_title("Gold and predicted score distribution")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


# -- html -----------------------------------------------------------------------------------------------------------

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1100px;padding:12px;color:#222;line-height:1.4}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch;margin:.5em 0}
table{border-collapse:collapse;font-size:.9em}th,td{border:1px solid #ddd;padding:4px 8px;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}thead th{background:#f4f4f4}
.ci{color:#777;font-size:.85em}.better{color:#1a7f37;font-weight:600}.worse{color:#c62828;font-weight:600}
img{max-width:100%;height:auto;display:block;margin:.5em 0}
.rule{background:#f6f8fa;border-left:4px solid #888;padding:8px 12px}
.card{border:1px solid #ddd;border-radius:6px;padding:10px;margin:12px 0}
.pair{display:flex;flex-wrap:wrap;gap:12px}.pair>div{flex:1 1 320px;min-width:0}
.answer{white-space:pre-wrap;word-wrap:break-word;font-size:.92em;line-height:1.7}
.ev{text-decoration:underline 2px #b00020;font-weight:600}.tag{font-size:.7em;color:#b00020;vertical-align:super;margin-right:1px}
.legend span{padding:1px 6px;margin-right:6px;border-radius:3px;font-size:.85em}
""" + "".join(f".s-{label}{{background:{colour}}}" for label, colour in COLOURS.items())

SCRIPT = """window.addEventListener('load',function(){var i=Array.prototype.slice.call(document.images);
document.body.dataset.images=String(i.length);
document.body.dataset.imagesLoaded=i.every(function(m){return m.complete&&m.naturalWidth>0;})?'yes':'no';});"""


def esc(text) -> str:
    return html.escape(str(text))


def fmt_iv(iv: Interval | None) -> str:
    if iv is None:
        return "-"
    return f"{iv.value:.3f} <span class='ci'>[{iv.low:.3f}, {iv.high:.3f}]</span>"


def fmt_diff(iv: Interval) -> str:
    cls = "worse" if iv.high < 0 else "better" if iv.low > 0 else ""
    return f"<span class='{cls}'>{iv.value:+.3f}</span> <span class='ci'>[{iv.low:+.3f}, {iv.high:+.3f}]</span>"


def fmt(v) -> str:
    return f"{v:.3f}" if isinstance(v, (int, float)) else "-"


def table(head: list[str], rows: list[list[str]], cls: str = "") -> str:
    th = "".join(f"<th>{h}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<div class='scroll'><table class='{cls}'><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table></div>"


def _point_figures(figures: dict) -> dict:
    """Baseline or human figures (points only) in the headline's names."""
    facts = figures.get("facts_f1")
    return {"section_macro_f1": figures.get("section_macro_f1"), "qwk": figures.get("qwk"), "exact": figures.get("exact"),
            "within_one": figures.get("within_one"), "evidence_char_f1": figures.get("evidence_char_f1"),
            "facts_f1": float(np.mean([facts[f] for f in FACTS])) if isinstance(facts, dict) and all(f in facts for f in FACTS) else None}


def headline_table(this: dict, champion: dict | None, baselines: dict | None, human: dict | None) -> str:
    head = ["system"] + [FIGURE_NAMES[f] for f in HEADLINE]
    rows = [[f"<b>this model</b> ({esc(this['label'])})"] + [fmt_iv(this["figures"]["intervals"][f]) for f in HEADLINE]]
    if champion:
        rows.append([f"champion ({esc(champion['label'])})"] + [fmt_iv(champion["figures"]["intervals"][f]) for f in HEADLINE])
        rows.append(["change against the champion (paired)"] + [fmt_diff(champion["paired"][f]["difference"]) for f in HEADLINE])
    for name, figures in (baselines or {}).items():
        if "qwk" not in figures:  # the story baseline: in the story table
            continue
        points = _point_figures(figures)
        rows.append([f"baseline: {esc(name)}"] + [fmt(points[f]) for f in HEADLINE])
    if human:
        points = _point_figures(human)
        rows.append(["a second annotator against the gold labels"] + [fmt(points[f]) for f in HEADLINE])
    return table(head, rows, cls="headline")


def _spans_html(text: str, sections: list[tuple[int, int, str]], evidence: list[tuple[int, int, str]]) -> str:
    """``text`` with each section's characters coloured by its label and each fact's evidence underlined, tagged at its start."""
    cuts = sorted({0, len(text), *(x for s in sections for x in s[:2]), *(x for e in evidence for x in e[:2])})
    out = []
    for a, b in zip(cuts, cuts[1:]):
        if a >= b:
            continue
        label = next((lab for s, e, lab in sections if s <= a < e), None)
        facts = [f for s, e, f in evidence if s <= a < e]
        starts = [f for s, _, f in evidence if s == a]
        classes = " ".join(([f"s-{label}"] if label else []) + (["ev"] if facts else []))
        title = "; ".join(([label] if label else []) + ([f"evidence {', '.join(facts)}"] if facts else []))
        tags = "".join(f"<span class='tag'>{esc(f)}</span>" for f in starts)
        out.append(f"{tags}<span class='{classes}' title='{esc(title)}'>{esc(text[a:b])}</span>")
    return "".join(out)


def gallery(records: list[dict], predictions: list[dict], n: int = GALLERY) -> tuple[str, list[str]]:
    """The answers with the largest |gold - predicted score|, ties broken by the share of characters whose section is wrong."""
    from star_scorer.data import evidence_spans, segment_spans

    ok = [i for i, p in enumerate(predictions) if not p.get("error")]
    counts = intervals.answer_counts([records[i] for i in ok], [predictions[i] for i in ok])["sections"].reshape(-1, 5, 5)
    char_error = 1 - np.trace(counts, axis1=1, axis2=2) / np.maximum(counts.sum((1, 2)), 1)
    gaps = [abs(int(records[i]["result_quality"]) - int(predictions[i]["result_quality"]["score"])) for i in ok]
    order = sorted(range(len(ok)), key=lambda k: (-gaps[k], -char_error[k], records[ok[k]]["id"]))[:n]
    cards, ids = [], []
    for k in order:
        rec, pred = records[ok[k]], predictions[ok[k]]
        q = pred["result_quality"]
        gold_sections = [(s.start, s.end, s.label) for s in segment_spans(rec["segments"])]
        gold_evidence = [(a, b, f) for f, spans in evidence_spans(rec).items() if rec["result_facts"].get(f) for a, b in spans]
        pred_sections = [(s["start"], s["end"], s["label"]) for s in pred["sections"]]
        pred_evidence = [(e["start"], e["end"], f) for f, e in (q.get("evidence") or {}).items() if e and e.get("holds")]
        facts = table(["fact"] + list(FACTS),
                      [["gold"] + ["yes" if rec["result_facts"][f] else "no" for f in FACTS],
                       ["predicted probability"] + [f"{q['facts'][f]:.2f}" for f in FACTS]])
        meta = ", ".join(f"{key} {esc(rec[key])}" for key in SLICE_KEYS if rec.get(key))
        cards.append(
            f"<div class='card'><b>{esc(rec['id'])}</b> <span class='ci'>{meta}</span><br>"
            f"score: gold <b>{int(rec['result_quality'])}</b>, predicted <b>{int(q['score'])}</b> "
            f"(probabilities {' '.join(f'{p:.2f}' for p in q['probabilities'])}); "
            f"section characters wrong: {char_error[k]:.0%}"
            + (f"<br><i>{esc(rec['question'])}</i>" if rec.get("question") else "")
            + facts
            + "<div class='pair'>"
            f"<div><b>gold</b><div class='answer'>{_spans_html(rec['answer'], gold_sections, gold_evidence)}</div></div>"
            f"<div><b>predicted</b><div class='answer'>{_spans_html(rec['answer'], pred_sections, pred_evidence)}</div></div>"
            "</div></div>")
        ids.append(rec["id"])
    legend = "<p class='legend'>" + "".join(f"<span class='s-{lab}'>{lab}</span>" for lab in SECTION_LABELS) + \
        "<span class='ev'>evidence of a fact</span> (its fact tagged where it starts)</p>"
    return legend + "".join(cards), ids


def page(title: str, data_file: str, this: dict, records: list[dict], champion: dict | None = None, baselines: dict | None = None,
         human: dict | None = None, rule: str | None = None, note: str | None = None, n_gallery: int = GALLERY) -> str:
    """The page. ``this`` and ``champion``: {"label", "predictions", "figures" (``set_figures``)}; ``champion`` also
    "paired" (``intervals.paired``, this model as the challenger)."""
    from star_scorer.metrics import evaluate_predictions, story_metrics

    preds = this["predictions"]
    report = evaluate_predictions(records, preds)
    iv, cal = this["figures"]["intervals"], this["figures"]["calibration"]
    civ = champion["figures"]["intervals"] if champion else None
    ok = [(r, p) for r, p in zip(records, preds) if not p.get("error")]
    parts = [f"<h1>{esc(title)}</h1>",
             f"<p>data <code>{esc(data_file)}</code>: {len(records)} answers, {report['n_errors']} scoring errors. "
             f"Model <b>{esc(this['label'])}</b>"
             + (f"; champion <b>{esc(champion['label'])}</b>" if champion else "")
             + f". Written {time.strftime('%Y-%m-%d %H:%M:%S')}.</p>"]
    if note:
        parts.append(f"<p>{esc(note)}</p>")
    parts += ["<h2 id='headline'>Headline</h2>", headline_table(this, champion, baselines, human),
              "<p class='ci'>Each figure with its bootstrap 95% interval over answers (1,000 resamples with replacement, "
              "percentile). The change against the champion is challenger - champion on the same resampled answers; "
              "green when its interval lies above 0, red when below. Baselines and human agreement are points.</p>"]
    if rule:
        parts.append(f"<p class='rule'><b>Promotion rule.</b> {esc(rule)}</p>")

    parts.append("<h2>Sections (character level, whitespace ignored)</h2>")
    rows = []
    for label in SECTION_LABELS:
        m = report["sections"]["per_label"][label]
        row = [label, fmt(m["precision"]), fmt(m["recall"]), fmt_iv(iv[f"f1_{label}"])]
        if champion:
            row += [fmt_iv(civ[f"f1_{label}"]), fmt_diff(champion["paired"][f"f1_{label}"]["difference"])]
        rows.append(row + [str(m["support_chars"])])
    parts.append(table(["label", "precision", "recall", "F1"] + (["champion F1", "change"] if champion else []) + ["gold chars"], rows))
    parts.append(f"<p>Macro-F1 over {', '.join(STAR_LABELS)}: <b>{fmt_iv(iv['section_macro_f1'])}</b>; over all five "
                 f"{report['sections']['macro_f1_all5']:.3f}; character accuracy {report['sections']['char_accuracy']:.3f}.</p>")
    story = story_metrics(records, preds)
    if story:
        head = ["system", "story type acc", "competency top-1", "top-2"] + [f"{step} F1" for step in FAILURE_STEPS]
        systems = [("this model", story), ("baseline: TF-IDF + logistic regression", (baselines or {}).get("tfidf-lr story"))]
        if champion:
            systems.insert(1, ("champion", story_metrics(records, champion["predictions"])))
        rows = [[name, fmt(f["story_type_accuracy"]), fmt(f["competency_top1"]), fmt(f["competency_top2"])]
                + [fmt(f["step_char_f1"][step]) for step in FAILURE_STEPS] for name, f in systems if f]
        parts += ["<h2>Story type, competency, failure steps</h2>", table(head, rows),
                  f"<p>{story['n_answers']} answers labelled with a story type; step spans (character F1) over the "
                  f"{story['n_step_annotated']} annotated for steps.</p>"]
    parts.append("<h2>Rubric facts and evidence</h2>")
    rows = []
    for fact in FACTS:
        row = [fact, fmt_iv(iv[f"fact_f1_{fact}"])]
        if champion:
            row += [fmt_iv(civ[f"fact_f1_{fact}"]), fmt_diff(champion["paired"][f"fact_f1_{fact}"]["difference"])]
        rel = cal["facts"][fact]
        rows.append(row + [str(report["facts"][fact]["positives"]), fmt(report["evidence"]["per_fact"][fact]), fmt(rel["brier"]), fmt(rel["ece"])])
    parts.append(table(["fact", "F1"] + (["champion F1", "change"] if champion else []) +
                       ["gold positives", "evidence char F1", "Brier", "ECE"], rows))
    score = cal["score"]
    parts.append(f"<p>Score probabilities: multi-class Brier {score['brier']:.3f} (summed over the five scores; 0 best, 2 worst), "
                 f"ECE {score['ece']:.3f} one-vs-rest (every answer and score k a forecast that the gold score is k, 10 bins), "
                 f"mean probability given to the gold score {score['gold_probability']:.3f}. Fact Brier and ECE: each fact's "
                 f"probability against the gold fact, 10 bins.</p>")

    parts.append("<h2>Result score (0-4)</h2>")
    parts.append(f"<p>QWK <b>{fmt_iv(iv['qwk'])}</b>, exact {fmt_iv(iv['exact'])}, within one {fmt_iv(iv['within_one'])}.</p>")
    cimgs = [("Sections (row-normalised)", confusion_figure(report["sections"]["confusion"], list(SECTION_LABELS), "Sections (row-normalised)")),
             ("Result score (row-normalised)", confusion_figure(report["result_quality"]["confusion"], [str(i) for i in range(NUM_SCORES)],
                                                                 "Result score (row-normalised)"))]
    parts.append("<div class='pair'>" + "".join(f"<div><img alt='confusion: {esc(t)}' src='{data_uri(f)}'></div>" for t, f in cimgs) + "</div>")
    champ_scores = None
    if champion:
        champ_scores = [p["result_quality"]["score"] for r, p in zip(records, champion["predictions"]) if not p.get("error")]
    dist = score_distribution_plot([int(r["result_quality"]) for r, _ in ok], [p["result_quality"]["score"] for _, p in ok], champ_scores)
    parts.append(f"<img alt='score distribution' src='{data_uri(dist)}'>")
    parts.append("<h2>Reliability</h2>")
    parts.append(f"<img alt='reliability diagrams' src='{data_uri(reliability_plot(cal, champion['figures']['calibration'] if champion else None))}'>")

    slices = this["figures"]["slices"]
    if slices:
        cs = champion["figures"]["slices"] if champion else None
        parts.append("<h2>Slices</h2>")
        rows = []
        for name, m in slices.items():
            row = [esc(name), str(m["n_answers"]), fmt_iv(m["section_macro_f1"]), fmt_iv(m["task_f1"]), fmt_iv(m["qwk"])]
            if cs:
                row += [fmt_iv(cs[name]["section_macro_f1"]), fmt_iv(cs[name]["qwk"])]
            rows.append(row)
        parts.append(table(["slice", "answers", "section macro-F1", "TASK F1", "QWK"] +
                           (["champion section macro-F1", "champion QWK"] if cs else []), rows))
        parts.append(f"<img alt='slices' src='{data_uri(slice_plot(slices, cs))}'>")

    cards, _ = gallery(records, preds, n_gallery)
    parts += [f"<h2>Error gallery</h2><p>The {n_gallery} answers with the largest |gold - predicted score|, ties broken by the "
              "share of characters whose section is wrong. Each answer twice: gold sections and evidence, then this model's.</p>", cards]
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body>{''.join(parts)}<script>{SCRIPT}</script></body></html>")


def index_page(title: str, rows: list[dict], rule: str | None = None) -> str:
    """Links to each set's page with its headline figures. ``rows``: {"name", "href", "n_answers", "intervals", "difference"?}."""
    head = ["data", "answers"] + [FIGURE_NAMES[f] for f in HEADLINE] + ["change in section macro-F1", "change in QWK"]
    body = []
    for r in rows:
        diff = r.get("difference")
        body.append([f"<a href='{esc(r['href'])}'>{esc(r['name'])}</a>", str(r["n_answers"])]
                    + [fmt_iv(r["intervals"][f]) for f in HEADLINE]
                    + ([fmt_diff(diff[f]) for f in ("section_macro_f1", "qwk")] if diff else ["-", "-"]))
    parts = [f"<h1>{esc(title)}</h1>", "<p>Each set's figures with bootstrap 95% intervals; the change is against the champion "
             "(paired, on the same answers) where there is one.</p>", table(head, body, cls="headline")]
    if rule:
        parts.append(f"<p class='rule'><b>Promotion rule.</b> {esc(rule)}</p>")
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body>{''.join(parts)}<script>{SCRIPT}</script></body></html>")
