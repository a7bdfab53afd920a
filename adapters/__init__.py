"""Thin per-framework adapters: ``persona_plugins.adapters.autogen`` (and more to come).

Each adapter translates the framework's messages and clients to the core types, calls the
:class:`~persona_plugins.PersonaPipeline`, and translates back; no policy lives here.
"""
