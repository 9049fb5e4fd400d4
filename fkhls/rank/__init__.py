"""Bit-level sensitivity rankings and their score against the exact exhaustive answer.

Flow: ``bitorder`` (FKeras's conventions for turning parameter scores into a bit order) <-
``sensitivity`` (gradient, Taylor and Hessian scores of the QKeras model, computed in TF) and
``truth`` (per-bit damage from a finished campaign or the exact TF engine) <- ``methods`` (one
ranking per method) -> ``ranking`` (the CSV + sidecar JSON) -> ``evaluate`` (curves, counts,
correlations) -> ``report`` (PNG, report.md, summary.json). Above ``campaign``: it reads its results.
"""
