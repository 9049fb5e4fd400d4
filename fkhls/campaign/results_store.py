"""Campaign results on disk: one Parquet file per shard, read lazily, so memory does not grow with the faults.

A shard's result columns (one row per scenario, int64 words and counts) go into
``shards/shard-NNNNN.parquet``, written atomically by whoever computed the shard; its engine
timings (one number per engine, not per row) go into the file's key-value metadata, so the
rows of a shard depend only on its scenarios. Readers take only the columns they need, shard
by shard (``pyarrow.dataset``), and the finished table is written once more as
``results.parquet`` in row groups (``write_batches``: as the report streams over the shards), from which
``results.csv`` is streamed batch by batch. A ``--csim-sample`` campaign's C-sim shards
(``csim-NNNNN.parquet``) hold the sampled faults' C-sim and agreement columns.

Campaign directories of fkhls before Parquet (``shard-NNNNN.npz``) are still read by
``read_shard`` and ``iter_columns``; resuming one is refused by the campaign's schema number.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from fkhls.core.errors import ProjectError
from fkhls.core.files import atomic_destination

__all__ = ["SHARD_SUFFIX", "LEGACY_SUFFIX", "shard_file", "csim_shard_file", "find_shard", "write_shard", "read_shard",
           "iter_columns", "read_columns", "shard_seconds", "write_table", "write_batches", "export_csv"]

SHARD_SUFFIX = ".parquet"
LEGACY_SUFFIX = ".npz"  # shards of campaigns written before Parquet
_SECONDS_KEY = b"fkhls.seconds"
BATCH_ROWS = 1 << 16  # rows per row group and per read batch: bounds memory, keeps files compact


def shard_file(shard_dir: str | Path, index: int) -> Path:
    """Where shard ``index`` is written."""
    return Path(shard_dir) / f"shard-{index:05d}{SHARD_SUFFIX}"


def csim_shard_file(shard_dir: str | Path, index: int) -> Path:
    """Where C-sim shard ``index`` of a ``--csim-sample`` campaign (its sampled faults, a chunk) is written."""
    return Path(shard_dir) / f"csim-{index:05d}{SHARD_SUFFIX}"


def find_shard(shard_dir: str | Path, index: int) -> Path | None:
    """The file of shard ``index`` (Parquet, or an old campaign's .npz), or None when it is not done."""
    for suffix in (SHARD_SUFFIX, LEGACY_SUFFIX):
        path = Path(shard_dir) / f"shard-{index:05d}{suffix}"
        if path.is_file():
            return path
    return None




def _table(columns: Mapping[str, np.ndarray]) -> pa.Table:
    arrays = {}
    for key, value in columns.items():
        value = np.asarray(value)
        if value.ndim != 1:
            raise ProjectError(f"result column {key!r} has shape {value.shape}; expected one value per row")
        arrays[key] = pa.array(value.tolist(), type=pa.string()) if value.dtype.kind == "U" else pa.array(value)
    return pa.table(arrays)


def write_shard(path: str | Path, columns: Mapping[str, np.ndarray]) -> None:
    """Write one shard atomically: per-row columns as Parquet, ``seconds_ENGINE`` scalars as file metadata."""
    path = Path(path)
    rows = {k: v for k, v in columns.items() if not k.startswith("seconds_")}
    seconds = {k[len("seconds_"):]: float(v) for k, v in columns.items() if k.startswith("seconds_")}
    table = _table(rows).replace_schema_metadata({_SECONDS_KEY: json.dumps(seconds).encode()})
    with atomic_destination(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def _numpy(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A column as numpy with its exact type (int64 stays int64; strings become a numpy str array)."""
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return np.array(column.to_pylist(), dtype=str)
    return column.to_numpy() if isinstance(column, pa.ChunkedArray) else column.to_numpy(zero_copy_only=False)


def read_shard(path: str | Path, columns: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """One shard's columns (all, or ``columns``), with its ``seconds_ENGINE`` timings as 0-d float64 arrays."""
    path = Path(path)
    if path.suffix == LEGACY_SUFFIX:
        with np.load(path) as data:
            return {k: data[k] for k in data.files if columns is None or k in columns or k.startswith("seconds_")}
    table = pq.read_table(path, columns=list(columns) if columns is not None else None)
    out = {name: _numpy(table.column(name)) for name in table.column_names}
    for engine, value in shard_seconds(path).items():
        out[f"seconds_{engine}"] = np.float64(value)
    return out


def shard_seconds(path: str | Path) -> dict[str, float]:
    """A shard's engine timings, from its footer only (no rows are read)."""
    path = Path(path)
    if path.suffix == LEGACY_SUFFIX:
        with np.load(path) as data:
            return {k[len("seconds_"):]: float(data[k]) for k in data.files if k.startswith("seconds_")}
    metadata = pq.read_schema(path).metadata or {}
    return json.loads(metadata.get(_SECONDS_KEY, b"{}"))


def iter_columns(paths: Sequence[Path], columns: Sequence[str] | None = None,
                 batch_rows: int = BATCH_ROWS) -> Iterator[dict[str, np.ndarray]]:
    """The rows of ``paths`` in order, a batch of at most ``batch_rows`` at a time: memory stays one batch."""
    paths = [Path(p) for p in paths]
    if any(p.suffix == LEGACY_SUFFIX for p in paths):
        for path in paths:
            yield {k: v for k, v in read_shard(path, columns).items() if not k.startswith("seconds_")}
        return
    if not paths:
        return
    dataset = pads.dataset([str(p) for p in paths], format="parquet")
    # use_threads=False: batches come back in file order, then row order.
    for batch in dataset.to_batches(columns=list(columns) if columns is not None else None, batch_size=batch_rows,
                                    use_threads=False):
        yield {name: _numpy(batch.column(i)) for i, name in enumerate(batch.schema.names)}


def read_columns(paths: Sequence[Path], columns: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """``iter_columns`` concatenated: only the asked columns are ever read from disk."""
    parts = list(iter_columns(paths, columns))
    if not parts:
        return {}
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


def write_table(path: str | Path, columns: Mapping[str, np.ndarray], batch_rows: int = BATCH_ROWS) -> Path:
    """The whole results table as one Parquet file, written atomically in row groups of ``batch_rows``."""
    path = Path(path)
    names = list(columns)
    n = len(next(iter(columns.values()))) if names else 0
    schema = _table({k: np.asarray(v)[:0] for k, v in columns.items()}).schema
    with atomic_destination(path) as tmp, pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
        for lo in range(0, max(n, 1), batch_rows):
            writer.write_table(_table({k: np.asarray(v)[lo:lo + batch_rows] for k, v in columns.items()})
                               .cast(schema))
    return path


def write_batches(path: str | Path, batches: Iterable[Mapping[str, np.ndarray]]) -> Path:
    """Batches of result columns (the same columns each, at least one batch) as one Parquet file, a row group
    per batch, written atomically: only one batch is in memory at a time."""
    path = Path(path)
    with atomic_destination(path) as tmp:
        writer = None
        try:
            for columns in batches:
                table = _table(columns)
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema, compression="zstd")
                writer.write_table(table.cast(writer.schema))
            if writer is None:
                raise ProjectError(f"no rows to write to {path}")
        finally:
            if writer is not None:
                writer.close()
    return path


def export_csv(parquet_path: str | Path, csv_path: str | Path, batch_rows: int = BATCH_ROWS) -> Path:
    """``results.csv`` streamed from a results Parquet file, one row group at a time, written atomically."""
    parquet_path, csv_path = Path(parquet_path), Path(csv_path)
    source = pq.ParquetFile(parquet_path)
    options = pacsv.WriteOptions(quoting_style="needed")
    with atomic_destination(csv_path) as tmp, \
            pacsv.CSVWriter(tmp, source.schema_arrow.remove_metadata(), write_options=options) as writer:
        for batch in source.iter_batches(batch_size=batch_rows):
            writer.write_batch(batch)
    return csv_path
