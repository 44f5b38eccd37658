"""The LRP2 wing: language vectors, the projection hooks, (m, n) sweeps, the experiment, similarity."""
