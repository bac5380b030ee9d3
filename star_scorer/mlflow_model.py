"""MLflow models-from-code entry: a pyfunc over the same StarScorer the CLI uses.

Input: a DataFrame with an ``answer`` column (optional ``id``, ``question``).
Output: one row per input row with the batch scorer's fields as columns.
"""

from __future__ import annotations

import os

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel

from star_scorer.io import rows_to_frame
from star_scorer.paths import MODEL_ENV


class StarScorerPyfunc(PythonModel):
    def load_context(self, context) -> None:
        from star_scorer.scorer import StarScorer

        self.scorer = StarScorer.load(context.artifacts["model"])
        # what rows name as their model: given by whoever loaded it (spark_udf's model_config, `serve`'s environment)
        self.scorer.source = (context.model_config or {}).get("model") or os.environ.get(MODEL_ENV) or self.scorer.source

    def predict(self, context, model_input, params=None):
        if not isinstance(model_input, pd.DataFrame) or "answer" not in model_input.columns:
            found = list(model_input.columns) if isinstance(model_input, pd.DataFrame) else type(model_input).__name__
            raise ValueError(f"expected a DataFrame with an 'answer' column (optional 'id', 'question'), found {found}")
        return rows_to_frame(self.scorer.score_rows(model_input.to_dict("records")))


mlflow.models.set_model(StarScorerPyfunc())
