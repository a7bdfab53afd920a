"""Integrations: the embedded llama.cpp model, OpenAI-compatible servers, OpenTelemetry set-up."""
