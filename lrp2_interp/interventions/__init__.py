"""Interventions: one protocol, one held-out selection routine, and the shift interventions (LRP2, mean steering)."""
