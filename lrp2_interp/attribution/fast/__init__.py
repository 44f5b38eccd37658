"""The fast exact attribution path: a functional forward per model family, run at the target position."""
