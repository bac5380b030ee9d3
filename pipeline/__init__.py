"""STAR answer scorer: section labelling and Result-quality scoring."""

__version__ = "0.1.0"
