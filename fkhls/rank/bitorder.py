"""Turn one score per parameter into an order over every bit, as FKeras does.

A parameter is one weight of one quantized tensor; parameters are numbered in FKeras's model
order (``ModelSpec.tensors()``: layers in model order, kernel then bias, C-order inside). Two
conventions from FKeras's ``HessianMetrics`` (KastnerRG/fkeras, ``fkeras/metrics/hessian.py``):

* ``msb-groups`` (``convert_param_ranking_to_msb_bit_ranking``, the one its experiments use):
  every parameter's MSB in parameter-rank order, then every MSB-1 in the same order, and so
  on; with mixed widths the groups count positions from each word's MSB.
* ``weighted`` (``rank_bits``): bit score = parameter score * 2**bit (bit counted from the LSB),
  all bits sorted by that score.

Ties are broken deterministically (lower parameter index first, then MSB first); FKeras's
``np.flip(np.argsort(...))`` leaves them to the sort algorithm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fkhls.core.errors import FkhlsError

__all__ = ["BIT_ORDERS", "BitSpace", "param_order", "bit_order"]

BIT_ORDERS = ("msb-groups", "weighted")


@dataclass(frozen=True)
class BitSpace:
    """The tensors of a model, in model-bit order: names, element counts and word widths."""

    layers: tuple[str, ...]
    tensors: tuple[str, ...]
    sizes: tuple[int, ...]
    widths: tuple[int, ...]

    @classmethod
    def of(cls, spec) -> "BitSpace":
        ts = spec.tensors()
        return cls(tuple(t.layer for t in ts), tuple(t.tensor for t in ts), tuple(t.size for t in ts),
                   tuple(t.width for t in ts))

    @property
    def n_params(self) -> int:
        return int(sum(self.sizes))

    @property
    def n_bits(self) -> int:
        return int(sum(s * w for s, w in zip(self.sizes, self.widths)))

    def param_tensor(self) -> np.ndarray:
        """Tensor index of every parameter."""
        return np.repeat(np.arange(len(self.sizes)), self.sizes)

    def param_width(self) -> np.ndarray:
        return np.repeat(np.asarray(self.widths, dtype=np.int64), self.sizes)

    def param_flat(self) -> np.ndarray:
        """Flat index inside its tensor of every parameter."""
        return np.concatenate([np.arange(s) for s in self.sizes]).astype(np.int64)

    def model_bit_offsets(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(np.asarray(self.sizes) * np.asarray(self.widths))[:-1]]).astype(np.int64)

    def all_bits(self) -> tuple[np.ndarray, np.ndarray]:
        """(tensor index, lbi) of every bit in model-bit order."""
        t = np.repeat(np.arange(len(self.sizes)), np.asarray(self.sizes) * np.asarray(self.widths))
        lbi = np.concatenate([np.arange(s * w) for s, w in zip(self.sizes, self.widths)]).astype(np.int64)
        return t, lbi


def param_order(scores: np.ndarray) -> np.ndarray:
    """Parameter indices by decreasing |score|; ties: lower index first."""
    scores = np.abs(np.asarray(scores, dtype=np.float64))
    if not np.all(np.isfinite(scores)):
        bad = int(np.flatnonzero(~np.isfinite(scores))[0])
        raise FkhlsError(f"parameter score {bad} is {scores[bad]}; scores must be finite")
    return np.lexsort((np.arange(len(scores)), -scores))


def bit_order(space: BitSpace, param_scores: np.ndarray, convention: str = "msb-groups"
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every bit ranked from parameter scores: (tensor index, lbi, bit score, parameter score) in rank order.

    The bit score is what the order sorts on within its convention: the parameter's |score| for
    ``msb-groups`` (the group is the position from the MSB), |score| * 2**bit for ``weighted``.
    """
    if convention not in BIT_ORDERS:
        raise FkhlsError(f"bit order {convention!r} is not valid; valid bit orders: {list(BIT_ORDERS)}")
    param_scores = np.asarray(param_scores, dtype=np.float64).ravel()
    if param_scores.size != space.n_params:
        raise FkhlsError(f"{param_scores.size} parameter scores given; the model has {space.n_params} parameters")
    rank_of_param = np.empty(space.n_params, dtype=np.int64)
    rank_of_param[param_order(param_scores)] = np.arange(space.n_params)
    width = space.param_width()
    # one row per bit: its parameter and its position from the MSB (0 = MSB)
    param = np.repeat(np.arange(space.n_params), width)
    from_msb = np.arange(len(param)) - np.repeat(np.cumsum(width) - width, width)
    bit = width[param] - 1 - from_msb
    magnitude = np.abs(param_scores)[param]
    if convention == "msb-groups":
        order = np.lexsort((rank_of_param[param], from_msb))  # lexsort's last key is primary: group, then rank
        score = magnitude
    else:
        score = magnitude * np.exp2(bit)
        order = np.lexsort((from_msb, rank_of_param[param], -score))
    tensor = space.param_tensor()[param]
    lbi = space.param_flat()[param] * width[param] + from_msb
    return tensor[order], lbi[order], score[order], param_scores[param][order]
