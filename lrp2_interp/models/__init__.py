"""Models: loading through TransformerLens, hook names, offline packages, random models, block replay."""
