"""The fast paths' unembedding in float32 or bfloat16 (``ProbeConfig.head_dtype``); log-softmax always in float32.

``"float32"`` is :meth:`LayerRunner.logits <lrp2_interp.models.layer_runner.LayerRunner.logits>`
unchanged.  ``"bfloat16"`` rounds the unembedding input and the unembedding weight and bias
to bfloat16 and multiplies them in bfloat16 (the logits come out rounded to bfloat16); the
final-logit soft-capping, the log-softmax and every sum over tokens stay in float32, and the
residual stream is never touched.  The bfloat16 copy of the weight is made once per weight
(and again only if the weight changes in place) and held while the weight lives.

Whether bfloat16 is faster depends on the CPU: with AMX (Intel Sapphire Rapids and later) a
bfloat16 matrix product is several times faster than float32; without it (AVX2-only CPUs such
as this project's AMD EPYC machines) it is several times *slower* -- see
``benchmarks/bf16_scoring.py``.  Rankings are made exact again by
:mod:`lrp2_interp.probing.verified`.
"""

from __future__ import annotations

import weakref

import torch

from lrp2_interp.models.layer_runner import LayerRunner

HEAD_DTYPES = ("float32", "bfloat16")
# id(weight) -> (weakref to the weight, its version when copied, bf16 weight, bf16 bias or None); an entry
# is dropped when its weight is freed (tensors compare elementwise, so a WeakKeyDictionary cannot hold them)
_BF16: dict[int, tuple] = {}


def bf16_head(runner: LayerRunner) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The unembedding's weight ``[vocab, d]`` and bias ``[vocab]`` (or None) in bfloat16, cached per weight."""
    weight = runner.unembed.weight
    bias = getattr(runner.unembed, "bias", None)
    version = (weight._version, None if bias is None else bias._version)
    hit = _BF16.get(id(weight))
    if hit is None or hit[0]() is not weight or hit[1] != version:
        with torch.no_grad():
            w, b = weight.detach().bfloat16(), None if bias is None else bias.detach().bfloat16()
        if hit is None or hit[0]() is not weight:
            weakref.finalize(weight, _BF16.pop, id(weight), None)
        hit = (weakref.ref(weight), version, w, b)
        _BF16[id(weight)] = hit
    return hit[2], hit[3]


def head_logits(runner: LayerRunner, u: torch.Tensor, dtype: str = "float32") -> torch.Tensor:
    """Float32 logits ``[n, vocab]`` of unembedding inputs ``u`` ``[n, d]``, the product done in ``dtype``."""
    if dtype == "float32":
        return runner.logits(u)
    w, b = bf16_head(runner)
    z = u.to(torch.bfloat16) @ w.T  # [n, vocab] bfloat16 (on AVX2 CPUs faster than F.linear)
    if b is not None:
        z = z + b
    z = z.float()
    if runner.softcap:
        z = torch.tanh(z / runner.softcap) * runner.softcap
    return z


def head_log_probs(
    runner: LayerRunner, u: torch.Tensor, targets: torch.Tensor, chunk: int, dtype: str = "float32"
) -> torch.Tensor:
    """``[n, k]`` float32 log-probabilities of ``targets`` ``[n, k]`` under rows ``u`` ``[n, d]``, ``chunk`` rows at a time."""
    if dtype == "float32":
        return runner.log_probs(u, targets, chunk)
    out = []
    for s in range(0, u.shape[0], chunk):
        lp = torch.log_softmax(head_logits(runner, u[s : s + chunk], dtype), dim=-1)
        out.append(lp.gather(1, targets[s : s + chunk]))
    return torch.cat(out) if out else torch.zeros(targets.shape, dtype=torch.float32, device=u.device)
