"""Exact emulation of (faulty) models: the TF bit-flip core and the batched single-bit engine."""
