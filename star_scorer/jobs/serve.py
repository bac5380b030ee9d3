"""REST scoring: ``python -m star_scorer.jobs.serve [--model models:/star-scorer@champion] [--port 5001]``.

Runs ``mlflow models serve`` on a logged scorer (default: the registered champion) in
this environment (``--env-manager local``), with this interpreter's ``bin`` first on
PATH so that MLflow finds the uvicorn it was installed with. Then:

    curl -s localhost:5001/invocations -H 'Content-Type: application/json' \\
      -d '{"dataframe_records": [{"id": "a", "answer": "I retrained the model. Churn fell 12%."}]}'

answers ``{"predictions": [...]}``, one scored row per record, nested fields as JSON
strings (``star_scorer/scored_row.schema.json``). A record whose answer is empty,
missing or not text gets its error in that row; the request still succeeds.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
from pathlib import Path

from star_scorer.paths import MODEL_ENV, REGISTERED_MODEL_NAME
from star_scorer.tracking import describe_model_uri, tracking_uri

logger = logging.getLogger(__name__)

DEFAULT_PORT = 5001
DEFAULT_MODEL = f"models:/{REGISTERED_MODEL_NAME}@champion"


def command(model: str = DEFAULT_MODEL, port: int = DEFAULT_PORT, host: str = "127.0.0.1", workers: int = 1) -> list[str]:
    return [sys.executable, "-m", "mlflow", "models", "serve", "--model-uri", model, "--port", str(port), "--host", host,
            "--env-manager", "local", "--workers", str(workers)]


def environment(model: str = DEFAULT_MODEL) -> dict[str, str]:
    """This process's environment with the interpreter's bin first on PATH, the project's tracking store and the
    model's registered name and version (what every row names as its model, like the batch CLI's rows)."""
    env = dict(os.environ)
    env[MODEL_ENV] = describe_model_uri(model)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["MLFLOW_TRACKING_URI"] = tracking_uri()
    env.setdefault("HF_HUB_OFFLINE", "1")
    return env


def start(model: str = DEFAULT_MODEL, port: int = DEFAULT_PORT, host: str = "127.0.0.1", workers: int = 1, **popen) -> subprocess.Popen:
    """The server as a child process (the caller stops it)."""
    return subprocess.Popen(command(model, port, host, workers), env=environment(model), **popen)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(description="Serve a logged scorer over REST with mlflow models serve.")
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"a models:/ or runs:/ URI (default {DEFAULT_MODEL})")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--host", default="127.0.0.1", help="0.0.0.0 to listen beyond this machine")
    parser.add_argument("--workers", type=int, default=1, help="server processes, each with its own copy of the model")
    args = parser.parse_args(argv)
    logger.info("serving %s on http://%s:%d/invocations (tracking store %s)", args.model, args.host, args.port, tracking_uri())
    server = start(args.model, args.port, args.host, args.workers)
    try:
        return server.wait()
    except KeyboardInterrupt:
        server.terminate()
        return server.wait()


if __name__ == "__main__":
    sys.exit(main())
