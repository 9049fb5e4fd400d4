"""fkhls: prove that FKeras-style bit-flip emulation computes what the hls4ml fixed-point hardware computes.

The Python API (``fkhls.export``, ``fkhls.Project``, ``fkhls.FaultSet`` ...) lives in ``fkhls.api`` and
is loaded on first use, so ``import fkhls`` stays cheap: no TensorFlow, hls4ml or numpy until needed.
"""

import os as _os

# TF 2.15 prints pages of CUDA/oneDNN notices on import; users of a CLI want none of them.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

__version__ = "0.1.0"

# name -> module that defines it; resolved by __getattr__ on first access.
_LAZY = {
    "export": "fkhls.api",
    "Project": "fkhls.api",
    "FaultSet": "fkhls.api",
    "FaultyLayerBitRegion": "fkhls.api",
    "FaultMap": "fkhls.api",
    "Crosscheck": "fkhls.api",
    "Campaign": "fkhls.api",
    "heatmap_figure": "fkhls.campaign.report",
    "histograms_figure": "fkhls.campaign.report",
    "lb_index_to_wb_index": "fkhls.faults.descriptors",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'fkhls' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
