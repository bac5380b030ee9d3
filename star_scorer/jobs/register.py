"""Log a trained scorer to MLflow as a models-from-code pyfunc, register it and move an alias to it
(``@challenger``: ``star_scorer.jobs.promote`` decides whether it becomes ``@champion``).

The logged model ships the library alone (``star_scorer/*.py``: no jobs, research or
data tools) beside the model folder, and pins the runtime packages it was trained with.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

import mlflow
import pandas as pd

import star_scorer
from star_scorer.io import rows_to_frame
from star_scorer.scorer import StarScorer
from star_scorer.tracking import pip_requirements

logger = logging.getLogger(__name__)

LIBRARY_DIR = Path(star_scorer.__file__).resolve().parent
PYFUNC_CODE = LIBRARY_DIR / "mlflow_model.py"  # the models-from-code entry (importing it would register a model)


def library_code() -> Path:
    """A copy of the library modules alone, as a ``star_scorer`` folder for MLflow's ``code_paths``."""
    target = Path(tempfile.mkdtemp(prefix="star-scorer-code-")) / "star_scorer"
    target.mkdir()
    for module in LIBRARY_DIR.glob("*.py"):
        shutil.copy(module, target / module.name)
    return target


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


def log_scorer(model_dir: Path, registered_name: str | None, alias: str = "challenger") -> dict:
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
        code_paths=[str(library_code())],
        pip_requirements=pip_requirements(),
        signature=signature,
        input_example=example,
        registered_model_name=registered_name,
    )
    out = {"model_uri": info.model_uri, "model_id": info.model_id}
    if registered_name:
        version_ = info.registered_model_version
        mlflow.MlflowClient().set_registered_model_alias(registered_name, alias, version_)
        out.update(registered_model=registered_name, version=int(version_), alias=alias)
        logger.info("registered %s version %s as @%s", registered_name, version_, alias)
    return out


def _example_output(model_dir: Path, example: pd.DataFrame) -> pd.DataFrame:
    scorer = StarScorer.load(model_dir)
    return rows_to_frame(scorer.score_rows(example.to_dict("records")))
