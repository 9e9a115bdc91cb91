"""Adapters: the engine's ports made real (terminal, demo backend, Telegram, HTTP)."""
