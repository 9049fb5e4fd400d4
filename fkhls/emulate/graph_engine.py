"""The single-bit engine's generic exact path: faults in any step of any graph (Add, Concatenate, several readers).

The chain fast path (``emulator``: bands, rank-1 updates) needs a chain of dense/conv blocks. This
path needs only each step's exact forward, and still avoids recomputing what a fault cannot change:

* Entry, batched over the faults of one step (no copy of the weights per fault):
  - an *accumulating* step (dense, conv, depthwise, pointwise: ``_ACCUMULATING``) sums
    ``patch[t] * w[t, c]`` plus ``b[c]``: the sum is linear in each word, so flipping w[t, c]
    moves only output channel ``c``'s accumulator, by ``(new - old) << shift`` times input term
    ``t`` (times 1 for a bias). The golden accumulator is computed once; a fault costs one
    channel's column (N, P), cast by the step's own ``finish``.
  - a *per-channel* step (batch norm, ApplyAlpha: ``_PER_CHANNEL``) computes channel ``c`` from
    input channel ``c``, its scale[c] and bias[c] only: its own ``forward`` runs on each fault's
    input column as a batch whose last axis is the fault, with that fault's scale and bias words.
  - any other step: its ``forward`` with the one flipped array (a shallow copy of the dict).
  Only the (fault, sample) pairs whose step output changed are kept.
* Downstream, each step runs only on the rows where one of the steps it reads differs from
  golden (the others read golden rows) and keeps only the rows whose output still differs: a
  row leaves as soon as it is golden again (every step computes each sample on its own and is
  deterministic). Sums and reshapes are carried without that comparison (a row that came back
  to golden stays golden; the output step compares). On wide rows an elementwise step
  (activation) maps only the changed words. An accumulating step reading one changed tensor,
  when a full product is costly, starts from its golden accumulator and adds the change: each
  changed input word ``d`` at input index ``i`` adds ``d * W[t]`` at every (position, term)
  reading ``i`` (a scatter map from ``patches`` of an index image), exact in int64 -- a rank-1
  update when one word changed. Rows whose change is dense, and small steps, are recomputed:
  one im2col product in float32 / float64 where every product and partial sum is an integer
  that float holds (the fast path's bound), else the step's own forward.
Measured in ``scripts/bench_graph_engine.py`` (README, Speed).
Rows of the model output that differ from golden are what the caller gets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from fkhls.core.fixedpoint import FixedPrecisionType, flip_bits
from fkhls.faults.descriptors import BitFault, lb_index_to_wb_index
from fkhls.model.layers import handler_for_kind, role_of
from fkhls.model.layers.dense import WeightedHandler, sum_magnitude
from fkhls.model.steps import LayerSpec, ModelSpec

# Steps whose output is a sum of patch[t] * kernel word plus a bias word per output channel (dense.py, conv.py,
# depthwise.py): an entry fault moves one channel's accumulator; a changed input updates the golden accumulator.
_ACCUMULATING = ("dense", "conv1d", "conv2d", "depthwise1d", "depthwise2d", "pointwise1d", "pointwise2d")
# Steps whose output channel c depends only on input channel c, scale[c] and bias[c] (batchnorm.py, alpha.py).
_PER_CHANNEL = ("batchnorm", "apply_alpha")
# An accumulating step reading a changed tensor is updated from its golden accumulator when the scattered
# products number at most this fraction of a full recomputation's (else it is recomputed on the changed rows).
_SPARSE_FRACTION = 0.25
_SPARSE_FRACTION_DENSE = 1 / 16  # a dense recomputation is one BLAS product, no im2col
# ... and only when a full recomputation costs at least this many multiply-adds per input word (finding the changed
# words costs a pass over the input; a float BLAS product of a small step is cheaper than the scatter).
_SPARSE_MIN_MACS = 128
# An elementwise step maps only a row's changed words when the row has at least this many (finding them costs two
# gathers and a comparison; on narrow rows mapping every word is cheaper).
_ELEMENTWISE_MIN_WORDS = 64
_FLOAT64_EXACT = 2**53
# Steps that only move words (reshape.py): a row with a changed input has a changed output, no comparison needed.
_BIJECTIVE = ("flatten", "reshape", "dropout")


def _is_fixed(layer: LayerSpec) -> bool:
    """Words of plain ap_(u)fixed types (a raw difference is a value difference at the type's scale)."""
    return all(type(t.ptype) is FixedPrecisionType for t in layer.tensors())


def _accumulating(layer: LayerSpec) -> bool:
    return (layer.kind in _ACCUMULATING and layer.kernel is not None and _is_fixed(layer)
            and isinstance(handler_for_kind(layer.kind), WeightedHandler))


def _per_channel(layer: LayerSpec) -> bool:
    return layer.kind in _PER_CHANNEL and layer.kernel is not None and layer.bias is not None and _is_fixed(layer)


@dataclass
class _Linear:
    """A step's golden accumulator (N, P, C) and the (term, channel) of each kernel word, the aligned kernel as a
    (terms, C) matrix, and (lazily) the scatter map input index -> (position, term) of its patches."""

    acc: np.ndarray
    frac: int
    patches_t: np.ndarray  # (T, N, P) golden input terms
    term: np.ndarray  # per flat kernel index
    channel: np.ndarray
    matrix: np.ndarray  # (T, C) int64: kernel words << (frac - in_frac - kernel_frac), zero where unused
    offset: np.ndarray  # (C,) int64 aligned bias words (zeros without a bias)
    sum_dtype: type | None  # float32 / float64 when a whole sum is exact in it (bound <= 2**24 / 2**53), else None
    scatter: tuple | None = None


@dataclass
class GraphGolden:
    """What the generic path reuses over every fault of one golden run (built lazily per step).

    ``outs[j]``: golden output words of step j; ``step(j, x)``: step j on faulty input words
    (single array or tuple); ``in_types[j]``: its input type(s).
    """

    spec: ModelSpec
    weights: dict
    outs: list
    in_types: list
    step: Callable
    sources: tuple = ()
    linear: dict = field(default_factory=dict)

    def __post_init__(self):
        self.sources = self.spec.sources()

    def golden_in(self, j: int) -> np.ndarray:
        return np.asarray(self.outs[self.sources[j][0]], dtype=np.int64)

    def lin(self, j: int) -> _Linear:
        cached = self.linear.get(j)
        if cached is None:
            layer = self.spec.layers[j]
            handler = handler_for_kind(layer.kind)
            in_type = self.in_types[j]
            acc = handler.accumulate(layer, in_type, self.golden_in(j), self.weights)
            kernel = self.weights[(layer.kernel.layer, layer.kernel.tensor)]
            n_terms, channels = acc.patches.shape[-1], acc.acc.shape[-1]
            flat = np.arange(kernel.size)
            if layer.kind.startswith("depthwise"):  # (window..., C, 1): term = flat, channel = its C index
                term, channel = flat, flat % channels
            else:  # (..., C): term = flat // C
                term, channel = np.divmod(flat, kernel.shape[-1])
            if kernel.shape[-1] not in (1, channels) or term.max() >= n_terms:
                raise AssertionError(f"{layer.name}: kernel {kernel.shape} does not map onto {n_terms} terms x "
                                     f"{channels} channels")
            matrix = np.zeros((n_terms, channels), dtype=np.int64)
            shift = acc.frac - in_type.fractional - layer.kernel.ptype.fractional
            matrix[term, channel] = kernel.reshape(-1).astype(np.int64) << shift
            patches_t = np.ascontiguousarray(np.asarray(acc.patches, dtype=np.int64).transpose(2, 0, 1))
            bound = sum_magnitude(layer, in_type, acc.frac)
            offset = np.zeros(channels, dtype=np.int64)
            if layer.bias is not None:
                bias = self.weights[(layer.bias.layer, layer.bias.tensor)].reshape(-1).astype(np.int64)
                offset += bias << (acc.frac - layer.bias.ptype.fractional)
            sum_dtype = np.float32 if bound <= 2**24 else np.float64 if bound <= _FLOAT64_EXACT else None
            cached = self.linear[j] = _Linear(np.asarray(acc.acc, dtype=np.int64), acc.frac, patches_t, term,
                                              channel, matrix, offset, sum_dtype)
        return cached

    def scatter(self, j: int):
        """(ptr, position, term): input word i is read at positions/terms ``[ptr[i], ptr[i+1])``."""
        lin = self.lin(j)
        if lin.scatter is None:
            layer = self.spec.layers[j]
            size = int(np.prod(layer.input_shape))
            index = np.arange(1, size + 1, dtype=np.int64).reshape(1, *layer.input_shape)
            patches = handler_for_kind(layer.kind).patches(layer, index)[0]  # (P, T): input index + 1, 0 = pad
            pos, term = np.nonzero(patches)
            word = patches[pos, term] - 1
            order = np.argsort(word, kind="stable")
            ptr = np.zeros(size + 1, dtype=np.int64)
            np.cumsum(np.bincount(word, minlength=size), out=ptr[1:])
            lin.scatter = (ptr, pos[order], term[order])
        return lin.scatter


def _flips(g: GraphGolden, key: tuple[str, str], faults: Sequence[BitFault]):
    """(flat index, old word, new word) per fault of one array."""
    tspec = g.spec.tensor(*key)
    lbis = np.fromiter((f.lbi for f in faults), dtype=np.int64, count=len(faults))
    flat, bit = lb_index_to_wb_index(lbis, tspec.width)
    old = np.asarray(g.weights[key], dtype=np.int64).reshape(-1)[flat]
    return tspec, flat, old, flip_bits(tspec.ptype, old, np.left_shift(np.int64(1), bit))


def _entry_columns(g: GraphGolden, index: int, faults: Sequence[BitFault]):
    """Per fault, the changed output channel and its new words (F, N, P) for accumulating / per-channel steps."""
    layer = g.spec.layers[index]
    n = g.outs[index].shape[0]
    keys = [(f.layer, f.tensor) for f in faults]
    channel = np.empty(len(faults), dtype=np.int64)
    words = None
    if _accumulating(layer):
        lin = g.lin(index)
        acc_t = lin.acc.transpose(2, 0, 1)  # (C, N, P) view
        cols = np.empty((len(faults), n, lin.acc.shape[1]), dtype=np.int64)
        for tspec in layer.tensors():
            mine = np.flatnonzero([k == (tspec.layer, tspec.tensor) for k in keys])
            if not len(mine):
                continue
            _, flat, old, new = _flips(g, (tspec.layer, tspec.tensor), [faults[i] for i in mine])
            if tspec == layer.kernel:
                shift = lin.frac - g.in_types[index].fractional - tspec.ptype.fractional
                chan = lin.channel[flat]
                cols[mine] = acc_t[chan] + ((new - old) << shift)[:, None, None] * lin.patches_t[lin.term[flat]]
            else:
                chan = flat
                cols[mine] = acc_t[chan] + ((new - old) << (lin.frac - tspec.ptype.fractional))[:, None, None]
            channel[mine] = chan
        words = WeightedHandler.finish(layer, cols, lin.frac)
    else:  # per channel: forward on (N, P, F) input columns with scale/bias words (F,)
        x = g.golden_in(index)
        x = x.reshape(n, -1, x.shape[-1])
        scale = np.asarray(g.weights[(layer.kernel.layer, layer.kernel.tensor)], dtype=np.int64).reshape(-1)
        bias = np.asarray(g.weights[(layer.bias.layer, layer.bias.tensor)], dtype=np.int64).reshape(-1)
        s, b = np.empty(len(faults), dtype=np.int64), np.empty(len(faults), dtype=np.int64)
        for tspec in layer.tensors():
            mine = np.flatnonzero([k == (tspec.layer, tspec.tensor) for k in keys])
            if not len(mine):
                continue
            _, flat, _, new = _flips(g, (tspec.layer, tspec.tensor), [faults[i] for i in mine])
            channel[mine] = flat
            s[mine] = new if tspec == layer.kernel else scale[flat]
            b[mine] = new if tspec == layer.bias else bias[flat]
        one = {(layer.kernel.layer, layer.kernel.tensor): s, (layer.bias.layer, layer.bias.tensor): b}
        words = handler_for_kind(layer.kind).forward(layer, g.in_types[index], x[:, :, channel], one)
        words = np.asarray(words, dtype=np.int64).transpose(2, 0, 1)
    return channel, words


def _entry(g: GraphGolden, index: int, faults: Sequence[BitFault]):
    """(fault positions, samples, new output rows) of the (fault, sample) pairs whose step output changed."""
    layer = g.spec.layers[index]
    golden = np.asarray(g.outs[index], dtype=np.int64)
    n = golden.shape[0]
    if _accumulating(layer) or _per_channel(layer):
        channel, words = _entry_columns(g, index, faults)
        c = golden.shape[-1] if _per_channel(layer) else g.lin(index).acc.shape[-1]
        gold = golden.reshape(n, -1, c)
        changed = (words != gold.transpose(2, 0, 1)[channel]).any(axis=2)  # (F, N)
        fpos, samples = np.nonzero(changed)
        rows = gold[samples]
        rows[np.arange(len(samples)), :, channel[fpos]] = words[fpos, samples]
        return fpos, samples, rows.reshape(len(samples), *golden.shape[1:])
    fpos, pair_samples, changed = [], [], []
    for k, fault in enumerate(faults):
        key = (fault.layer, fault.tensor)
        tspec, flat, old, new = _flips(g, key, [fault])
        faulty = dict(g.weights)
        faulty[key] = np.asarray(g.weights[key], dtype=np.int64).copy()
        faulty[key].reshape(-1)[flat] = new
        _, x_in = _inputs(g, index, None, None)
        out = handler_for_kind(layer.kind).forward(layer, g.in_types[index], x_in, faulty)
        samples = np.flatnonzero((out != golden).reshape(n, -1).any(axis=1))
        if len(samples):
            fpos.append(np.full(len(samples), k))
            pair_samples.append(samples)
            changed.append(out[samples])
    if not changed:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty((0, *golden.shape[1:]), np.int64)
    return np.concatenate(fpos), np.concatenate(pair_samples), np.concatenate(changed)


def _inputs(g: GraphGolden, j: int, faulty: dict | None, samples: np.ndarray | None):
    """(rows, input words) of step j: the union of its sources' changed rows, golden elsewhere (all rows when
    ``faulty`` is None)."""
    srcs = g.sources[j]
    if faulty is None:
        ins = [np.asarray(g.outs[s], dtype=np.int64) for s in srcs]
        return None, ins[0] if len(ins) == 1 else tuple(ins)
    hit = [s for s in srcs if s in faulty]
    rows = faulty[hit[0]][0]
    for s in hit[1:]:
        rows = np.union1d(rows, faulty[s][0])
    ins = []
    for s in srcs:
        if s in faulty and len(faulty[s][0]) == len(rows):
            ins.append(faulty[s][1])
            continue
        x = np.asarray(g.outs[s][samples[rows]], dtype=np.int64)
        if s in faulty:
            x[np.searchsorted(rows, faulty[s][0])] = faulty[s][1]
        ins.append(x)
    return rows, ins[0] if len(ins) == 1 else tuple(ins)


def _accumulate_change(g: GraphGolden, j: int, x: np.ndarray, samples: np.ndarray):
    """Step j's accumulator rows from its golden accumulator plus the changed input words, for the rows whose
    change is sparse: returns (those rows' positions, their accumulators (R', P, C)).

    Each changed word ``d`` at input index ``i`` adds ``d * W[t]`` at every (position, term) reading ``i``; a row
    takes this way when those products number at most ``_SPARSE_FRACTION`` of a full recomputation's. Sums are
    int64 (exact: the accumulator type bounds them). The k-th changed word of every row is added in pass k: one
    input word is read at most once per position, so no (row, position) repeats within a pass.
    """
    lin = g.lin(j)
    rows = len(samples)
    _, p, c = lin.acc.shape
    diff = (x - g.golden_in(j)[samples]).reshape(rows, -1)
    r, i = np.nonzero(diff)
    ptr, pos, term = g.scatter(j)
    counts = ptr[i + 1] - ptr[i]
    fraction = _SPARSE_FRACTION_DENSE if g.spec.layers[j].kind == "dense" else _SPARSE_FRACTION
    sparse = np.bincount(r, weights=counts, minlength=rows) <= fraction * p * lin.patches_t.shape[0]
    mine = np.flatnonzero(sparse)
    keep = sparse[r]
    d = diff[r[keep], i[keep]]
    r, i, counts = np.searchsorted(mine, r[keep]), i[keep], counts[keep]
    acc = lin.acc[samples[mine]].reshape(len(mine) * p, c)
    first = np.ones(len(r), dtype=bool)
    np.not_equal(r[1:], r[:-1], out=first[1:])
    rank = np.arange(len(r)) - np.maximum.accumulate(np.where(first, np.arange(len(r)), 0))
    for k in range(int(rank.max()) + 1 if len(r) else 0):
        e = np.flatnonzero(rank == k)
        n_e = counts[e]
        rep = np.repeat(e, n_e)
        at = np.arange(len(rep)) - np.repeat(np.cumsum(n_e) - n_e, n_e) + ptr[i[rep]]
        acc[r[rep] * p + pos[at]] += d[rep][:, None] * lin.matrix[term[at]]
    return mine, acc.reshape(len(mine), p, c)


def _recompute(g: GraphGolden, j: int, x: np.ndarray) -> np.ndarray:
    """Step j on faulty input rows. A dense / conv / pointwise sum runs as one product of the im2col input with the
    aligned kernel in float32 / float64 when every product and partial sum is an integer that float holds
    (``sum_dtype``, the fast path's rule; the input converted before im2col), cast by the step's ``finish``."""
    layer = g.spec.layers[j]
    lin = g.lin(j) if _accumulating(layer) and not layer.kind.startswith("depthwise") else None
    if lin is None or lin.sum_dtype is None:
        return np.asarray(g.step(j, x), dtype=np.int64)
    patches = handler_for_kind(layer.kind).patches(layer, x.astype(lin.sum_dtype))
    acc = patches @ lin.matrix.astype(lin.sum_dtype)
    acc = acc.astype(np.int64)
    acc += lin.offset
    return WeightedHandler.finish(layer, acc, lin.frac).reshape(len(x), *layer.output_shape)


def _run_step(g: GraphGolden, j: int, x, samples: np.ndarray) -> np.ndarray:
    """Step j's output words on faulty input rows ``x`` of ``samples``."""
    layer = g.spec.layers[j]
    fraction = _SPARSE_FRACTION_DENSE if layer.kind == "dense" else _SPARSE_FRACTION
    if len(g.sources[j]) != 1 or not _accumulating(layer):
        return np.asarray(g.step(j, x), dtype=np.int64)
    lin = g.lin(j)
    macs = lin.patches_t.shape[0] * lin.acc.shape[1] * lin.acc.shape[2]
    if fraction < 0 or macs < _SPARSE_MIN_MACS * int(np.prod(layer.input_shape)):
        return _recompute(g, j, x)
    mine, acc = _accumulate_change(g, j, x, samples)
    if len(mine) == len(samples):
        return WeightedHandler.finish(layer, acc, g.lin(j).frac).reshape(len(samples), *layer.output_shape)
    out = np.empty((len(samples), *layer.output_shape), dtype=np.int64)
    rest = np.ones(len(samples), dtype=bool)
    rest[mine] = False
    out[rest] = _recompute(g, j, x[rest])
    if len(mine):
        out[mine] = WeightedHandler.finish(layer, acc, g.lin(j).frac).reshape(len(mine), *layer.output_shape)
    return out


def _words_alone(layer: LayerSpec, x: np.ndarray) -> bool:
    """An elementwise step (each output word from its own input word, ``LayerHandler.role``) of one input shape."""
    return (role_of(layer.kind) == "elementwise" and tuple(layer.output_shape) == tuple(x.shape[1:])
            and x[0].size >= _ELEMENTWISE_MIN_WORDS)


def _elementwise_change(g: GraphGolden, j: int, rows: np.ndarray, x: np.ndarray, samples: np.ndarray):
    """An elementwise step on the changed words only: (kept row positions, their output rows) of the rows whose
    output still differs. Every other word of a row is its golden input word, so its output is golden."""
    src = g.sources[j][0]
    golden_in = g.outs[src][samples]
    golden_out = g.outs[j][samples].reshape(len(rows), -1)
    width = golden_out.shape[1]
    where = np.flatnonzero(x.reshape(-1) != golden_in.reshape(-1))
    new = np.asarray(g.step(j, x.reshape(-1)[where]), dtype=np.int64)
    differs = new != golden_out.reshape(-1)[where]
    where, new = where[differs], new[differs]
    row = where // width
    hit = np.zeros(len(rows), dtype=bool)
    hit[row] = True
    kept = np.flatnonzero(hit)
    slot = np.cumsum(hit) - 1
    out = golden_out[kept].astype(np.int64)
    out[slot[row], where - row * width] = new
    return kept, out.reshape(len(kept), *g.spec.layers[j].output_shape)


def downstream_steps(spec: ModelSpec, index: int) -> list[int]:
    """Steps after ``index`` that read its output, directly or through other steps, in order."""
    reach, out = {index}, []
    for j, srcs in enumerate(spec.sources()):
        if j > index and any(src in reach for src in srcs):
            reach.add(j)
            out.append(j)
    return out


def single_bit_effects(g: GraphGolden, index: int, faults: Sequence[BitFault], max_rows: int = 1 << 14):
    """(fault positions, samples, final output rows) of every (fault, sample) pair whose model output differs
    from golden, for single-bit faults in the arrays of step ``index`` (see the module notes)."""
    spec = g.spec
    last = len(spec.layers) - 1
    later = downstream_steps(spec, index)
    fpos, samples, changed = _entry(g, index, faults)
    out_shape = tuple(np.shape(g.outs[last])[1:])
    empty = (np.empty(0, np.int64), np.empty(0, np.int64), np.empty((0, *out_shape), np.int64))
    if not len(fpos) or (index != last and last not in later):
        return empty
    results = []
    for lo in range(0, len(samples), max_rows):
        rows_s = samples[lo:lo + max_rows]
        faulty = {index: (np.arange(len(rows_s)), changed[lo:lo + max_rows])}
        for j in later:
            if not any(s in faulty for s in g.sources[j]):
                continue
            rows, x = _inputs(g, j, faulty, rows_s)
            if len(g.sources[j]) == 1 and _words_alone(spec.layers[j], x):
                kept, out = _elementwise_change(g, j, rows, x, rows_s[rows])
                if len(kept):
                    faulty[j] = (rows[kept], out)
                continue
            out = _run_step(g, j, x, rows_s[rows])
            if j != last and (spec.layers[j].kind in _BIJECTIVE or _accumulating(spec.layers[j])):
                # a reshape moves a changed word; a sum comes back to golden only by an exact cancellation: the
                # rows are carried without a comparison (a golden row stays golden downstream, the end drops it)
                faulty[j] = (rows, out)
                continue
            keep = (out != g.outs[j][rows_s[rows]]).reshape(len(rows), -1).any(axis=1)
            if keep.all():
                faulty[j] = (rows, out)
            elif keep.any():
                faulty[j] = (rows[keep], out[keep])
        if last in faulty:
            rows, out = faulty[last]
            results.append((fpos[lo:lo + max_rows][rows], rows_s[rows], out))
    if not results:
        return empty
    return tuple(np.concatenate(parts) for parts in zip(*results))
