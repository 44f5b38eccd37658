"""Matched random controls shared by the methods: random tensors of the same norms, random neurons of the same counts.

* :func:`same_norm_random`: Gaussian values rescaled so that each slice along the first
  axis has the norm of the matching slice of ``x`` (a random direction of the same norm
  for a ``[1, d]`` vector; random maps of the same per-layer Frobenius norms for
  ``[layers, d, d]``).
* :func:`random_mask_like`: random neurons with the same count in every layer as a
  ``[n_layers, d_mlp]`` mask (:func:`lrp2_interp.neurons.sets.random_masks`, the
  knowledge-neuron analyses' control).

LRP2's own controls (random directions, the rotation of the LIRP/LSRP plane) live with LRP2
(:mod:`lrp2_interp.lrp2.projection`, :mod:`lrp2_interp.interventions.language_projection`).
"""

from __future__ import annotations

import torch

from lrp2_interp.neurons.sets import random_masks


def same_norm_random(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Gaussian tensor shaped like ``x`` ``[k, ...]`` whose slice ``i`` has the norm of ``x[i]``."""
    r = torch.randn(x.shape, generator=generator)
    shape = (-1,) + (1,) * (x.dim() - 1)  # one norm per slice, broadcast over the rest
    return r / r.flatten(1).norm(dim=1).clamp(min=1e-12).view(shape) * x.flatten(1).norm(dim=1).view(shape)


def random_mask_like(mask: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """A random ``[n_layers, d_mlp]`` mask with the same number of neurons in every layer (seeded)."""
    return random_masks(mask.sum(1).tolist(), mask.shape[1], 1, seed=seed)[0]
