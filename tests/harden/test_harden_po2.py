"""rank and harden on a project with quantized_po2 kernels (hls4ml's {sign, exponent} struct words).

rank orders a po2 word's bits MSB first like any word: the sign field, then the exponent MSB..LSB (lbi 0 of a
word is its sign field). harden votes and reloads ap_(u)fixed words only, so a selection that reaches a po2 word
is refused, naming the array.
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from fkhls.core.errors import ProjectError
from fkhls.core.fixedpoint import from_raw
from fkhls.emulate import emulator as emulate
from fkhls.faults.addressing import spec_from_manifest
from fkhls.faults.descriptors import BitFault
from fkhls.harden.project import harden_project
from fkhls.project.export import ExportOptions, export_model
from fkhls.rank.methods import rank_project
from fkhls.rank.ranking import write_ranking

from tests import models


@pytest.fixture(scope="module")
def po2_project(tmp_path_factory):
    base = tmp_path_factory.mktemp("harden_po2")
    model = models.build("dense_po2")
    return model, export_model(model, base / "golden", ExportOptions()), base


def test_msb_ranking_puts_each_po2_words_sign_field_first(po2_project):
    model, manifest, _ = po2_project
    ranking = rank_project(manifest.project_dir, "msb")
    ranking.check_complete()
    space = ranking.space
    first = space.tensors.index("kernel")  # p1.kernel, quantized_po2(4, max_value=1): 5-bit words
    assert (space.layers[first], space.widths[first]) == ("p1", 5)
    n = space.sizes[first]
    assert_array_equal(ranking.tensor[:n], first)
    assert_array_equal(ranking.lbi[:n], np.arange(n) * 5)  # every word's top bit, in element order
    spec = spec_from_manifest(manifest)
    weights = emulate.golden_weights(model, spec)
    ptype = spec.tensor("p1", "kernel").ptype
    golden = from_raw(ptype, weights[("p1", "kernel")]).ravel()
    for lbi, change in ((0, lambda v: -v), (4, None)):  # the sign field negates; the exponent LSB doubles or halves
        flipped = from_raw(ptype, emulate.apply_faults(spec, weights, [BitFault("p1", "kernel", lbi, 5)])[("p1", "kernel")])
        if change is not None:
            assert flipped.ravel()[0] == change(golden[0])
        else:
            assert flipped.ravel()[0] in (golden[0] * 2, golden[0] / 2)


def test_harden_refuses_a_selection_reaching_a_po2_word(po2_project):
    _, manifest, base = po2_project
    write_ranking(manifest, rank_project(manifest.project_dir, "msb"), base / "msb.csv")
    with pytest.raises(ProjectError) as info:
        harden_project(manifest.project_dir, base / "msb.csv", base / "hardened", budget=1)
    message = str(info.value)
    for word in ("(p1.kernel)", "quantized_po2 exponent structs", "ap_(u)fixed words only"):
        assert word in message, (word, message)
    assert not (base / "hardened").exists()  # nothing written
