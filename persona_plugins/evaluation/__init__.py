"""Evaluation harnesses: reproduce the methods' results on your own model.

- :mod:`persona_plugins.evaluation.datasets` loads the reasoning sets (GSM8K, SVAMP, AQuA,
  StrategyQA, date understanding, tracking shuffled objects) from a data folder;
- :mod:`persona_plugins.evaluation.jekyll_hyde` compares persona-only, neutral-only, Jekyll & Hyde
  and SPP answers (``persona-plugins eval jekyll-hyde``);
- :mod:`persona_plugins.evaluation.runner` keeps up to N questions in flight for every harness
  (``--concurrency``), and :mod:`persona_plugins.evaluation.records` keeps their resumable
  JSON-lines files;
- :mod:`persona_plugins.evaluation.audit_batch` writes the audit as OpenAI batch files and scores
  a batch engine's results (``audit --write-batch`` / ``--read-batch``);
- :mod:`persona_plugins.evaluation.bulk_check` runs the guardrail detectors over a JSON-lines log
  in worker processes (``check --jsonl``).
"""
