"""STAR answer scorer: section labelling and Result-quality scoring.

The library a user imports is this package's top-level modules::

    from star_scorer import StarScorer
    scorer = StarScorer.load()          # a model folder, a models:/ URI, or the default model
    scorer.predict("We had a fraud model that ...")

``star_scorer.jobs`` holds the jobs (train, score, evaluate, calibrate),
``star_scorer.research`` and ``star_scorer.datatools`` the research and data
tools; imports go one way: library <- jobs <- tools (tests/test_layout.py).
``StarScorer`` is imported on first use, so the data tools run on a bare Python.
"""

__version__ = "0.1.0"
__all__ = ["StarScorer"]


def __getattr__(name: str):
    if name == "StarScorer":
        from star_scorer.scorer import StarScorer

        return StarScorer
    raise AttributeError(f"module 'star_scorer' has no attribute {name!r}")
