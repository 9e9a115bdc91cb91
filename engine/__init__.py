"""Flowgram's engine: flows declared in YAML, run as conversations, adapter-neutral.

The engine knows nothing of Telegram or HTTP. Events come in (`engine.events`),
actions go out through a `Channel` (`engine.actions`), and backend calls go
through a `BackendPort` (`engine.backend`).
"""
