"""MLflow: an embedded SQLite store by default (``MLFLOW_TRACKING_URI`` overrides it), and getting a
logged scorer back. Logging and registering one is the job ``star_scorer.jobs.register``."""

from __future__ import annotations

import logging
import os
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import mlflow

from star_scorer.modeling import CONFIG_NAME
from star_scorer.paths import DEFAULT_TRACKING_URI

logger = logging.getLogger(__name__)

RUNTIME_PACKAGES = ("torch", "transformers", "tokenizers", "safetensors", "numpy", "pandas", "mlflow")


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def setup(experiment: str) -> str:
    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    mlflow.set_experiment(experiment)
    return uri


def pip_requirements() -> list[str]:
    """The scorer's runtime packages, pinned to the versions it was trained with."""
    reqs = []
    for name in RUNTIME_PACKAGES:
        try:
            v = version(name).split("+")[0]  # torch's local "+cpu" tag is not on the registry
        except PackageNotFoundError:
            continue
        reqs.append(f"{name}=={v}")
    return reqs


def describe_model_uri(uri: str) -> str:
    """What a scored row's ``model`` says for ``uri``: ``name vN`` for a registered model (an alias resolved), else the URI."""
    spec = uri[len("models:/"):] if uri.startswith("models:/") else None
    if not spec:
        return uri
    client = mlflow.MlflowClient(tracking_uri(), registry_uri=tracking_uri())
    if "@" in spec:
        name, alias = spec.split("@", 1)
        return f"{name} v{client.get_model_version_by_alias(name, alias).version}"
    name, _, version_ = spec.rpartition("/")
    return f"{name} v{version_}" if name and version_.isdigit() else uri


def download_model(uri: str) -> Path:
    """The scorer folder inside a logged pyfunc model (``models:/name@alias``, ``runs:/...``)."""
    mlflow.set_tracking_uri(tracking_uri())
    mlflow.set_registry_uri(tracking_uri())
    target = Path(tempfile.mkdtemp(prefix="star-scorer-"))
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(target)))
    found = sorted(p.parent for p in local.rglob(CONFIG_NAME))
    if not found:
        raise FileNotFoundError(f"expected a scorer folder ({CONFIG_NAME}) inside {uri}, found none")
    return found[0]
