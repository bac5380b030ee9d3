"""REST: the champion behind a real `mlflow models serve`, started by the test, asked over HTTP, then stopped."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.error
import urllib.request

import jsonschema
import pandas as pd
import pytest

from star_scorer import io
from star_scorer.jobs import serve
from star_scorer.scorer import SCHEMA_PATH


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, payload: dict) -> tuple[int, dict]:
    request = urllib.request.Request(url, json.dumps(payload).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


@pytest.fixture()
def server(trained, tmp_path):
    port = _free_port()
    log = (tmp_path / "serve.log").open("w")
    proc = serve.start(port=port, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
        try:
            with urllib.request.urlopen(base + "/ping", timeout=2):
                break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("the server did not answer /ping within 120 s:\n" + (tmp_path / "serve.log").read_text()[-3000:])
    yield base
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def test_the_champion_answers_over_rest_with_an_error_row_for_a_bad_answer(server, trained):
    from star_scorer.jobs import score

    root, _ = trained
    records = [
        {"id": "a", "question": "q", "answer": "Our churn model drifted. I owned the fix. I retrained it weekly. Churn fell 12%."},
        {"id": "empty", "question": "q", "answer": ""},
        {"id": "missing", "question": "q", "answer": None},
        {"id": "b", "question": "q", "answer": "We shipped the fix. Errors fell by half."},
    ]
    status, body = _post(server + "/invocations", {"dataframe_records": records})
    assert status == 200, body
    rows = io.frame_to_rows(pd.DataFrame(body["predictions"]))
    assert [r["id"] for r in rows] == ["a", "empty", "missing", "b"]
    assert rows[0]["error"] is None and rows[0]["sections"] and rows[0]["result_quality"]["score"] in range(5)
    assert "empty string" in rows[1]["error"] and "missing value" in rows[2]["error"]
    schema = json.loads(SCHEMA_PATH.read_text())
    for row in rows:
        jsonschema.validate(row, schema)
    assert rows[0]["model"] == "star-scorer v1"  # the alias resolved, as the batch CLI says it

    # the same rows as the batch CLI on the champion
    src, out = root / "rest-in.jsonl", root / "rest-out.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in records))
    out.unlink(missing_ok=True)
    score.run(str(src), str(out), "models:/star-scorer@champion", progress=False)
    cli = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows == [r | {"id": str(r["id"])} for r in cli]
