"""fkhls harden on an io_stream, Resource-strategy Vitis conv project: other call forms, transposed kernels."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from fkhls.csim import build as csim
from fkhls.csim.harness import run_fault_harness
from fkhls.harden.project import harden_project
from fkhls.harden.verify import protected_scenarios
from fkhls.project.export import ExportOptions, export_model
from fkhls.rank.methods import rank_project
from fkhls.rank.ranking import write_ranking

from tests import models


@pytest.fixture(scope="module")
def conv(tmp_path_factory):
    base = tmp_path_factory.mktemp("harden_stream")
    model = models.build("conv2d")
    golden = export_model(model, base / "golden", ExportOptions("Vitis", "io_stream", "Resource", 2))
    write_ranking(golden, rank_project(golden.project_dir, "random", seed=1), base / "random.csv")
    hardened = harden_project(golden.project_dir, base / "random.csv", base / "hard", budget=8)
    x_raw = csim.input_words(golden, models.inputs_for(model, n=16))
    return golden, hardened, x_raw


def test_stream_project_parity_and_masking(conv):
    golden, hardened, x_raw = conv
    manifest = hardened.manifest
    assert len(manifest.hardening["arrays"]) >= 2  # a random pick spreads over layers
    reference = run_fault_harness(golden, x_raw, [[]])[0]
    assert_array_equal(run_fault_harness(manifest, x_raw, [[]])[0], reference)
    scenarios = protected_scenarios(manifest)
    out = run_fault_harness(manifest, x_raw, scenarios)
    assert scenarios and np.count_nonzero(out != reference[None]) == 0
    # the same primary faults change outputs of the original project: the vote is what masks them
    assert np.count_nonzero(run_fault_harness(golden, x_raw, scenarios[0::3]) != reference[None]) > 0
