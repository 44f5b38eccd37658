"""CLI commands for the knowledge neurons."""

from __future__ import annotations


def register(sub) -> None:
    return None
