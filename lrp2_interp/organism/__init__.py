"""The offline model organism: its training corpus and its training."""
