"""fkhls: prove that FKeras-style bit-flip emulation computes what the hls4ml fixed-point hardware computes."""

import os as _os

# TF 2.15 prints pages of CUDA/oneDNN notices on import; users of a CLI want none of them.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

__version__ = "0.1.0"
