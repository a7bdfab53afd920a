"""Integrations: the embedded llama.cpp model, OpenAI-compatible servers and OpenTelemetry set-up."""
