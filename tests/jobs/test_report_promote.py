"""Reports people read and the model lifecycle, with the session's tiny model and a real SQLite MLflow store.

The page is checked as a file (self-contained, the headline table with intervals, the champion beside) and in a
real headless Chromium (every image loaded; a screenshot kept under tmp_path). Promotion is checked on given
figures and end to end: a challenger whose decoding labels every word OTHER is really worse, and stays out.
"""

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import mlflow
import pytest
from helpers import FIXTURES

from star_scorer.intervals import Interval
from star_scorer.jobs import evaluate, promote, register, report
from star_scorer.paths import PROJ_ROOT

DATA = str(FIXTURES / "answers.jsonl")


@pytest.fixture()
def worse_model(trained, tmp_path) -> Path:
    """The tiny model with a decoding prior so strong for OTHER that no word is S, T, A or R (and so no Result, score 0)."""
    root, _ = trained
    target = tmp_path / "models" / "tiny-all-other"
    shutil.copytree(root / "models" / "tiny", target)
    cfg = json.loads((target / "scorer_config.json").read_text())
    cfg["label_bias"] = {"OTHER": 1000.0}
    (target / "scorer_config.json").write_text(json.dumps(cfg))
    return target


def register_challenger(model_dir: Path) -> dict:
    from star_scorer import tracking

    tracking.setup("star-scorer")
    with mlflow.start_run(run_name=model_dir.name):
        return register.log_scorer(model_dir, "star-scorer")


def test_decide_promotes_unless_a_guarded_figure_is_worse_beyond_its_interval():
    tie = {"realworld-dev": {"section_macro_f1": Interval(-0.01, -0.03, 0.01), "qwk": Interval(0.02, -0.05, 0.09)}}
    assert promote.decide(tie) == (True, [])
    loss = {"realworld-dev": {"section_macro_f1": Interval(0.0, 0.0, 0.0), "qwk": Interval(0.0, 0.0, 0.0)},
            "dev": {"section_macro_f1": Interval(0.01, -0.01, 0.03), "qwk": Interval(-0.08, -0.14, -0.02),
                    "exact": Interval(-0.2, -0.3, -0.1)}}  # exact is not guarded
    promoted, reasons = promote.decide(loss)
    assert not promoted and len(reasons) == 1 and reasons[0].startswith("dev: qwk -0.080")
    assert "entirely below 0" in promote.RULE and "first model" in promote.RULE
    # within the intervals everywhere, but the first set's mean of the two figures falls: kept out (v14's case)
    within = {"realworld-dev": {"section_macro_f1": Interval(-0.005, -0.02, 0.01), "qwk": Interval(-0.039, -0.10, 0.02)},
              "dev": {"section_macro_f1": Interval(0.004, -0.01, 0.02), "qwk": Interval(0.01, -0.03, 0.05)}}
    promoted, reasons = promote.decide(within)
    assert not promoted and reasons == ["realworld-dev: the mean of section_macro_f1 and qwk falls by 0.022 "
                                        "(section_macro_f1 -0.005, qwk -0.039)"]
    # the same fall on a later set, within its intervals, is no loss: the first set is the one models are chosen on
    assert promote.decide({"realworld-dev": within["dev"], "dev": within["realworld-dev"]}) == (True, [])


def test_a_worse_challenger_is_not_promoted(trained, worse_model, tracking_uri):
    client = mlflow.MlflowClient(tracking_uri, registry_uri=tracking_uri)
    assert client.get_model_version_by_alias("star-scorer", "champion").version in (1, "1")  # the first model of the store
    registered = register_challenger(worse_model)
    assert registered["alias"] == "challenger" and registered["version"] == 2
    assert client.get_model_version_by_alias("star-scorer", "champion").version in (1, "1")  # registering moves no champion
    result = promote.main(["--data", DATA])
    assert result["promoted"] is False and result["champion"] == 1 and result["challenger"] == 2
    figures = result["data"]["fixtures-answers"]["section_macro_f1"]
    assert figures["challenger"]["value"] == 0.0 < figures["champion"]["value"] and figures["difference"]["high"] < 0
    assert client.get_model_version_by_alias("star-scorer", "champion").version in (1, "1")
    assert client.get_model_version_by_alias("star-scorer", "challenger").tags["promotion"] == "kept"
    # logged: the decision, the dataset as a run input, each model's figures against its logged model
    exp = client.get_experiment_by_name("star-scorer-promotion")
    run = client.search_runs([exp.experiment_id])[0]
    assert run.data.tags["decision"] == "kept" and run.data.metrics["fixtures-answers.difference.section_macro_f1_high"] < 0
    assert [d.dataset.name for d in run.inputs.dataset_inputs] == ["fixtures-answers"]
    logged = client.get_logged_model(registered["model_id"])
    assert {m.key for m in logged.metrics} >= {"fixtures-answers.section_macro_f1", "fixtures-answers.qwk_low", "fixtures-answers.qwk_high"}
    # the same model registered again is not worse than itself: promoted
    register_challenger(Path(trained[0]) / "models" / "tiny")
    again = promote.run(data=[DATA])
    assert again["promoted"] and again["champion"] == 3


def test_report_page_is_self_contained_with_intervals_and_the_champion_beside(trained, worse_model, tracking_uri, tmp_path):
    result = report.main(["--model", str(worse_model), "--data", DATA, "--out", str(tmp_path / "reports"), "--gallery", "3"])
    assert result["champion"] == "star-scorer v1"
    page = Path(result["data"]["fixtures-answers"]["page"])
    text = page.read_text()
    assert "<meta name='viewport'" in text and "overflow-x:auto" in text
    assert not re.search(r"""(src|href)\s*=\s*['"]?(https?:)?//""", text)  # nothing from the network
    images = re.findall(r"<img[^>]*src='([^']*)'", text)
    assert len(images) >= 5 and all(src.startswith("data:image/png;base64,") for src in images)
    headline = re.search(r"<table class='headline'>.*?</table>", text).group(0)
    assert "this model" in headline and "champion (star-scorer v1)" in headline and "change against the champion" in headline
    assert re.search(r"0\.000 <span class='ci'>\[0\.000, 0\.000\]</span>", headline)  # all OTHER: section macro-F1 0 exactly
    assert "class='worse'" in headline  # worse than the champion beyond the interval
    assert html.escape(promote.RULE) in text and "Error gallery" in text and text.count("class='card'") == 3
    assert "class='s-RESULT" in text  # gold sections coloured by label
    figures = json.loads((page.parent / "intervals.json").read_text())
    assert figures["intervals"]["section_macro_f1"] == {"value": 0.0, "low": 0.0, "high": 0.0}
    assert figures["promotion_losses"]
    index = (tmp_path / "reports" / "index.html").read_text()
    assert "href='fixtures-answers/report.html'" in index
    run = mlflow.MlflowClient(tracking_uri).get_run(result["run_id"])
    assert run.data.metrics["fixtures-answers.section_macro_f1_high"] == 0.0 and "fixtures-answers.difference.qwk_low" in run.data.metrics
    assert [d.dataset.name for d in run.inputs.dataset_inputs] == ["fixtures-answers"]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:  # the test set-up installs it (make chromium: Debian's package)
        subprocess.run(["make", "-s", "chromium"], cwd=PROJ_ROOT, check=True, timeout=900)
        found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "expected chromium on PATH after `make chromium`, found none"
    return found


def test_the_page_loads_in_a_real_browser(trained, tmp_path):
    root, _ = trained
    out = tmp_path / "eval"
    evaluate.main(["--data", DATA, "--model", str(root / "models" / "tiny"), "--out", str(out), "--format", "html", "--no-mlflow"])
    url = (out / "report.html").resolve().as_uri()
    browser = chromium()
    flags = ["--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1280,2000",
             f"--user-data-dir={tmp_path / 'profile'}"]
    shot = tmp_path / "page.png"
    subprocess.run([browser, *flags, f"--screenshot={shot}", url], check=True, capture_output=True, timeout=120)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    dom = subprocess.run([browser, *flags, "--virtual-time-budget=5000", "--dump-dom", url], check=True, capture_output=True,
                         text=True, timeout=120).stdout
    assert re.search(r"<body[^>]*data-images-loaded=\"yes\"", dom), dom[:300]
    assert int(re.search(r'data-images="(\d+)"', dom).group(1)) >= 5
    assert "<table class=\"headline\">" in dom and "this model" in dom
