"""The one place project paths are defined."""

from __future__ import annotations

from pathlib import Path

PROJ_ROOT = Path(__file__).resolve().parents[1]
CONFIGS_DIR = PROJ_ROOT / "configs"
DATA_DIR = PROJ_ROOT / "data"
RAW_DATA_DIR = DATA_DIR / "raw"
MODELS_DIR = PROJ_ROOT / "models"
REPORTS_DIR = PROJ_ROOT / "reports"
RUNS_DIR = PROJ_ROOT / "runs"  # trainer checkpoints: scratch, git-ignored
DEFAULT_TRACKING_URI = f"sqlite:///{PROJ_ROOT / 'mlflow.db'}"
REGISTERED_MODEL_NAME = "star-scorer"


def data_name(data: str | Path) -> str:
    """A report name for a data file: its stem, prefixed by its folder when that is not the project's data/."""
    path = Path(data).resolve()
    return path.stem if path.parent == DATA_DIR.resolve() else f"{path.parent.name}-{path.stem}"
MODEL_ENV = "STAR_SCORER_MODEL"  # e.g. "star-scorer v3": the model a served pyfunc's rows name, set by whoever loads it
