"""Knowledge-neuron attribution: integrated gradients over FFN activations, reference and fast paths."""
