"""Evaluation harnesses: reproduce the methods' results on your own model.

- :mod:`persona_plugins.evaluation.datasets` loads the reasoning sets (GSM8K, SVAMP, AQuA,
  StrategyQA, date understanding, tracking shuffled objects) from a data folder;
- :mod:`persona_plugins.evaluation.jekyll_hyde` compares persona-only, neutral-only, Jekyll & Hyde
  and SPP answers (``persona-plugins eval jekyll-hyde``).
"""
