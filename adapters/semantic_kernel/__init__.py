"""Semantic Kernel adapter (work in progress: see issue #6)."""
