"""CLI commands for the offline default (organism) and the one-command demo."""

from __future__ import annotations


def register(sub) -> None:
    return None
