"""Typed mLAMA probing: the public call, its types, the fast path and the reference."""
