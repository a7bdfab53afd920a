"""Bias guardrails against persona-induced harms (work in progress: see issue #5)."""
