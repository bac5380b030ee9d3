"""MLflow: an embedded SQLite store by default, the scorer logged as a models-from-code pyfunc."""

from __future__ import annotations

import logging
import os
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import mlflow
import pandas as pd

from pipeline.modeling import CONFIG_NAME
from pipeline.paths import DEFAULT_TRACKING_URI

logger = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent
PYFUNC_CODE = PACKAGE_DIR / "mlflow_model.py"
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


def input_example() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": ["example-1"],
            "question": ["Tell me about a time you improved a model."],
            "answer": [
                "Our churn model missed most cancellations. I retrained it on six months of data. "
                "Recall rose from 0.41 to 0.66 and the retention team saved about 300 accounts a quarter."
            ],
        }
    )


def log_scorer(model_dir: Path, registered_name: str | None, alias: str = "champion") -> dict:
    """Log ``model_dir`` as a pyfunc in the active run; register it and move ``alias`` to the new version."""
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types import ColSpec, Schema

    example = input_example()
    inputs = Schema(
        [ColSpec("string", "id", required=False), ColSpec("string", "question", required=False), ColSpec("string", "answer")]
    )
    outputs = infer_signature(example, _example_output(model_dir, example)).outputs
    signature = ModelSignature(inputs=inputs, outputs=outputs)
    info = mlflow.pyfunc.log_model(
        name="scorer",
        python_model=str(PYFUNC_CODE),
        artifacts={"model": str(model_dir)},
        code_paths=[str(PACKAGE_DIR)],
        pip_requirements=pip_requirements(),
        signature=signature,
        input_example=example,
        registered_model_name=registered_name,
    )
    out = {"model_uri": info.model_uri}
    if registered_name:
        version_ = info.registered_model_version
        mlflow.MlflowClient().set_registered_model_alias(registered_name, alias, version_)
        out.update(registered_model=registered_name, version=int(version_), alias=alias)
        logger.info("registered %s version %s as @%s", registered_name, version_, alias)
    return out


def _example_output(model_dir: Path, example: pd.DataFrame) -> pd.DataFrame:
    from pipeline.predictor import StarScorer
    from pipeline.score import rows_to_frame

    scorer = StarScorer.load(model_dir)
    return rows_to_frame(scorer.score_rows(example.to_dict("records")))


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
