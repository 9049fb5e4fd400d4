"""fkhls.campaign.results_store: Parquet keeps every column exactly, reads lazily, streams the CSV, reads old shards."""

from __future__ import annotations

import csv
import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from numpy.testing import assert_array_equal

from fkhls.campaign.results_store import (
    export_csv,
    find_shard,
    iter_columns,
    read_columns,
    read_shard,
    shard_file,
    shard_seconds,
    write_shard,
    write_table,
)
from fkhls.campaign.runner import (
    CAMPAIGN_JSON,
    SHARD_DIR,
    CampaignConfig,
    CampaignMismatchError,
    Selection,
    load_results,
    report_campaign,
    run_campaign,
)
from fkhls.project.export import ExportOptions, export_model

from tests import models


def _columns(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Every kind of column a results table has: raw words at the int64 extremes, floats, awkward strings."""
    rng = np.random.default_rng(seed)
    words = rng.integers(-(1 << 62), 1 << 62, size=n, dtype=np.int64)
    words[:3] = [np.iinfo(np.int64).min, np.iinfo(np.int64).max, -1]
    return {
        "scenario": np.arange(n, dtype=np.int64),
        "tf_max_abs_error_lsb": words,
        "tf_max_abs_error": words * 2.0 ** -13,
        "tf_accuracy_drop": rng.random(n) / 3.0,
        "name": np.array([f'fc{i % 3}.kernel[lbi={i}], "q"' for i in range(n)]),
        "array": np.array(["" if i % 5 == 0 else f"w{i % 4}" for i in range(n)]),
    }


def _assert_exact(expected: dict, got: dict) -> None:
    assert list(got) == list(expected)
    for key, value in expected.items():
        assert got[key].dtype.kind == value.dtype.kind, f"column {key}: {got[key].dtype} != {value.dtype}"
        if value.dtype.kind in "if":
            assert got[key].dtype == value.dtype, f"column {key}: {got[key].dtype} != {value.dtype}"
        assert_array_equal(got[key], value, err_msg=f"column {key}")


def test_shard_round_trip_is_exact(tmp_path):
    columns = _columns(300)
    path = shard_file(tmp_path, 7)
    write_shard(path, {**columns, "seconds_tf": np.float64(1.25), "seconds_csim": np.float64(0.5)})
    assert path.name == "shard-00007.parquet" and find_shard(tmp_path, 7) == path
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "a temporary file was left"
    got = read_shard(path)
    assert got.pop("seconds_tf") == 1.25 and got.pop("seconds_csim") == 0.5
    _assert_exact(columns, got)
    assert shard_seconds(path) == {"tf": 1.25, "csim": 0.5}
    # the timings are file metadata, not rows: the row data is the same whatever the timings
    assert pq.read_table(path).num_columns == len(columns)


def test_lazy_read_in_order_and_by_column(tmp_path):
    parts = [_columns(n, seed) for seed, n in enumerate((100, 37, 250))]
    paths = []
    for index, part in enumerate(parts):
        part["scenario"] = part["scenario"] + sum(len(p["scenario"]) for p in parts[:index])
        paths.append(shard_file(tmp_path, index))
        write_shard(paths[-1], part)
    batches = list(iter_columns(paths, ["scenario", "tf_max_abs_error_lsb"], batch_rows=64))
    assert all(set(b) == {"scenario", "tf_max_abs_error_lsb"} for b in batches)
    assert max(len(b["scenario"]) for b in batches) <= 64 and len(batches) >= 387 // 64
    everything = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    assert_array_equal(np.concatenate([b["scenario"] for b in batches]), np.arange(387))
    _assert_exact(everything, read_columns(paths))


def test_table_and_csv_stream(tmp_path):
    columns = _columns(1000, seed=3)
    parquet = write_table(tmp_path / "results.parquet", columns, batch_rows=128)
    assert pq.ParquetFile(parquet).metadata.num_row_groups == 8
    _assert_exact(columns, read_columns([parquet]))
    export_csv(parquet, tmp_path / "results.csv", batch_rows=100)
    with open(tmp_path / "results.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == list(columns)
    assert len(rows) == 1001
    for i, row in enumerate(rows[1:]):
        for key, cell in zip(columns, row):
            value = columns[key][i]
            if value.dtype.kind == "i":
                assert int(cell) == int(value), (i, key)
            elif value.dtype.kind == "f":
                assert float(cell) == float(value), (i, key)
            else:
                assert cell == str(value), (i, key)


def test_legacy_npz_shard_is_read(tmp_path):
    columns = _columns(50)
    numeric = {k: v for k, v in columns.items() if v.dtype.kind in "if"}
    np.savez(tmp_path / "shard-00000.npz", **numeric, seconds_tf=np.float64(2.0))
    path = find_shard(tmp_path, 0)
    assert path.suffix == ".npz"
    assert shard_seconds(path) == {"tf": 2.0}
    _assert_exact(numeric, read_columns([path]))


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    base = tmp_path_factory.mktemp("store")
    model = models.build("dense")
    manifest = export_model(model, base / "dense", ExportOptions())
    x = models.inputs_for(model, n=16, seed=2)
    np.save(base / "x.npy", x)
    np.save(base / "y.npy", np.arange(16) % 3)
    config = CampaignConfig(manifest.project_dir, base / "x.npy", "tf", Selection(mode="exhaustive"),
                            base / "y.npy", 256)
    result = run_campaign(config, base / "r", workers=1, quiet=True)
    return config, base, result


def test_campaign_table_round_trips_through_parquet(campaign):
    """results.parquet holds every column of the campaign's table exactly, integer words as int64."""
    _, base, result = campaign
    table = result.table
    stored = read_columns([base / "r" / "results.parquet"])
    _assert_exact({k: np.asarray(v) for k, v in table.columns.items()}, stored)
    assert stored["tf_max_abs_error_lsb"].dtype == np.int64
    with open(base / "r" / "results.csv", newline="") as handle:
        assert sum(1 for _ in handle) == len(table) + 1


def test_old_campaign_directory_is_read_but_not_resumed(campaign, tmp_path):
    """A schema-1 directory (npz shards): the report reads it; resuming it is refused, naming the schema."""
    import shutil

    config, base, result = campaign
    old = tmp_path / "old"
    shutil.copytree(base / "r", old)
    for path in sorted((old / SHARD_DIR).glob("shard-*.parquet")):
        np.savez(path.with_suffix(".npz"), **read_shard(path))
        path.unlink()
    identity = json.loads((old / CAMPAIGN_JSON).read_text())
    identity["schema"] = 1
    (old / CAMPAIGN_JSON).write_text(json.dumps(identity))
    table = load_results(old)
    for key, value in result.table.columns.items():
        assert_array_equal(table.columns[key], value, err_msg=key)
    report_campaign(old)
    with pytest.raises(CampaignMismatchError, match=r"schema: on disk 1, asked 2"):
        run_campaign(config, old, workers=1, quiet=True)
