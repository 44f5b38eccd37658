"""Knowledge neurons: selection, overlap with English, the causal check and the analysis pipeline."""
