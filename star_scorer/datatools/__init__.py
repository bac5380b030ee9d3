"""Data tools: the raw corpus and its build (corpus), the counterfactual copies, and the checks and statistics (datacheck). Standard library only where writers run them (corpus, counterfactual)."""
