"""Prefect flows: they sequence tasks and own the human gates (flows -> tasks -> databourse)."""
