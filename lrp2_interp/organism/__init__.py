"""The offline model organism: its configuration (and cache key), its training corpus and its training."""
