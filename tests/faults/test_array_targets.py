"""Fault targets beyond kernel/bias (issue 10): a batch norm's scale and bias arrays in descriptors (by tensor name
and by hls4ml array name), the address map, inject + C-sim, campaign selections and the TF way's refusal."""

from __future__ import annotations

import json

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from fkhls.core.errors import AddressError, FaultSpecError, ProjectError
from fkhls.faults.descriptors import BitFault, exhaustive_faults, load_fault_set, random_ber_scenarios, tensor_names
from tests import models


@pytest.fixture(scope="module")
def bn(tmp_path_factory):
    from fkhls.emulate import emulator as emulate
    from fkhls.faults.addressing import spec_from_manifest
    from fkhls.model.spec import describe_model
    from fkhls.project.export import ExportOptions, export_model

    model = models.build("batchnorm")
    spec = describe_model(model)
    base = tmp_path_factory.mktemp("bn_targets")
    manifest = export_model(model, base / "prj", ExportOptions())
    return model, spec, spec_from_manifest(manifest), emulate.golden_weights(model, spec), manifest, base


def test_tensor_and_array_forms_name_the_same_bits(bn):
    _, spec, project_spec, _, manifest, _ = bn
    record = manifest.layer("bn1")
    assert (record.kernel.tensor, record.bias.tensor) == ("scale", "bias") and record.kernel.array.startswith("s")
    by_name = load_fault_set({"faults": [{"layer": "bn1", "tensor": "scale", "bits": [0, 17]}]}, project_spec)
    by_array = load_fault_set({"faults": [{"array": record.kernel.array, "bits": [0, 17]}]}, project_spec)
    assert by_name.scenarios[0].faults == by_array.scenarios[0].faults
    assert by_name.scenarios[0].faults[1] == BitFault("bn1", "scale", 17, 16)  # word 1, bit 14 of ap_fixed<16,.>
    bias = load_fault_set({"faults": [{"array": record.bias.array, "regions": [[0, 15, 1.0]]}]}, project_spec)
    assert {(f.layer, f.tensor) for f in bias.scenarios[0].faults} == {("bn1", "bias")}
    # the kernel of a dense layer by its array name too (FKeras's forms are unchanged)
    dense = manifest.layer("d1").kernel.array
    assert load_fault_set({"faults": [{"array": dense, "bits": [3]}]}, project_spec).scenarios[0].faults == (
        BitFault("d1", "kernel", 3, 5),)
    # a spec from the model (describe_model) holds no array names: the form is refused with what to do
    with pytest.raises(FaultSpecError, match="no hls4ml array names.*spec_from_manifest"):
        load_fault_set({"faults": [{"array": "s4", "bits": [0]}]}, spec)


def test_array_form_refusals(bn):
    _, _, project_spec, _, _, _ = bn
    with pytest.raises(FaultSpecError, match=r"array 'w99' does not exist; arrays of the project: \['w2', 'b2', 's4'"):
        load_fault_set({"faults": [{"array": "w99", "bits": [0]}]}, project_spec)
    with pytest.raises(FaultSpecError, match="both an 'array' and a 'layer'"):
        load_fault_set({"faults": [{"array": "s4", "layer": "bn1", "bits": [0]}]}, project_spec)
    with pytest.raises(FaultSpecError, match=r"no 'gamma' array.*valid tensors of 'bn1': \['scale', 'bias'\]"):
        load_fault_set({"faults": [{"layer": "bn1", "tensor": "gamma", "bits": [0]}]}, project_spec)
    with pytest.raises(FaultSpecError, match=r"bit 32 of bn1.scale \(2 weights x 16 bits\) is outside .*0..31"):
        load_fault_set({"faults": [{"array": "s4", "bits": [32]}]}, project_spec)


def test_generators_enumerate_every_array(bn):
    _, spec, project_spec, _, _, _ = bn
    assert tensor_names(spec) == ("kernel", "bias", "scale")
    every = exhaustive_faults(project_spec)
    assert len(every) == sum(t.n_bits for t in spec.tensors())
    assert {(f.layer, f.tensor) for f in every} == {(t.layer, t.tensor) for t in spec.tensors()}
    scales = exhaustive_faults(project_spec, tensors=("scale",))
    assert {(f.layer, f.tensor) for f in scales} == {("bn1", "scale"), ("bn2", "scale")}
    with pytest.raises(FaultSpecError, match=r"tensor 'gamma' is not valid; tensors of this model: \['kernel', 'bias', "
                                             r"'scale'\]"):
        exhaustive_faults(project_spec, tensors=("gamma",))
    drawn = random_ber_scenarios(project_spec, 0.05, 3, seed=4)
    assert any(f.tensor == "scale" for s in drawn for f in s.faults)


def test_address_map_of_a_batchnorm_array(bn):
    from fkhls.faults.addressing import address_map

    _, _, _, _, manifest, _ = bn
    amap = address_map(manifest)
    record = manifest.layer("bn1").kernel
    hbit = amap.map_lbi("bn1", "scale", 17)
    assert (hbit.array, hbit.element, hbit.array_bit, hbit.keras_index) == (record.array, 1, 14, (1,))
    assert hbit.memory is None and "function instantiated per call" in hbit.note
    assert amap.from_array_bit(record.array, 1, 14) == hbit
    layout = amap.layout("bn1", "scale")
    assert layout.source == "nnet_batchnorm.h:normalize" and "ARRAY_PARTITION variable=scale complete" in layout.directive
    with pytest.raises(AddressError, match="no addressable weight memory"):
        amap.from_memory_bit("bn1", 0, 0, tensor="scale")
    with pytest.raises(AddressError, match=r"no weight tensor 'bn1'.'gamma'"):
        amap.map_lbi("bn1", "gamma", 0)
    with pytest.raises(AddressError, match=r"no 'gamma' memory of layer 'bn1'; its tensors: \['scale', 'bias'\]"):
        amap.from_memory_bit("bn1", 0, 0, tensor="gamma")  # locate --layer bn1 --tensor gamma


def test_manifest_accepts_array_names_and_refuses_a_non_identifier(bn):
    from fkhls.project.manifest import MANIFEST_NAME, load_manifest

    _, _, _, _, manifest, base = bn
    assert load_manifest(manifest.project_dir).layer("bn2").kernel.tensor == "scale"
    broken = base / "broken"
    broken.mkdir()
    data = json.loads((manifest.project_dir / MANIFEST_NAME).read_text())
    index = [layer["name"] for layer in data["layers"]].index("bn1")
    data["layers"][index]["kernel"]["tensor"] = "scale; rm -rf"
    (broken / MANIFEST_NAME).write_text(json.dumps(data))
    with pytest.raises(ProjectError, match=r"layers\[\d+\].kernel.tensor is 'scale; rm -rf'; expected a C identifier"):
        load_manifest(broken)


def test_injected_scale_fault_in_csim_equals_the_emulator(bn):
    """A BN scale fault (descriptor by array name) written into the .txt and C-simulated: the emulator's words."""
    from fkhls.csim.build import run_csim
    from fkhls.csim.inject import inject
    from fkhls.emulate import emulator as emulate
    from fkhls.project.weights import read_array_words

    _, spec, project_spec, weights, manifest, base = bn
    record = manifest.layer("bn1").kernel
    fault_set = {"seed": 1, "faults": [{"array": record.array, "bits": [0, 2 * 16 - 3]}]}  # sign of word 0, bit 2 of 1
    result = inject(manifest.project_dir, fault_set, base / "faulty")
    golden_words = read_array_words(manifest.project_dir, record)
    faulty_words = read_array_words(result.project_dir, record)
    assert_array_equal(np.flatnonzero(golden_words != faulty_words), [0, 1])
    assert faulty_words[1] == golden_words[1] ^ 4 and faulty_words[0] - golden_words[0] in (-(1 << 15), 1 << 15)
    document = json.loads(result.faults_json.read_text())
    assert {(w["layer"], w["tensor"]) for w in document["words"]} == {("bn1", "scale")}
    from fkhls.project.manifest import load_manifest

    x = models.grid_inputs((4, 4, 1), 30, seed=2, fractional=3, scale=1.5)
    faults = load_fault_set(fault_set, project_spec).scenarios[0].faults
    expected = emulate.forward_raw(spec, emulate.apply_faults(spec, weights, faults), emulate.input_raw(spec, x))
    got = run_csim(load_manifest(result.project_dir), x)
    assert_array_equal(got, expected.reshape(len(x), -1))
    golden = emulate.forward_raw(spec, weights, emulate.input_raw(spec, x))
    assert np.any(golden != expected)  # the fault is visible


def test_tf_way_refuses_computed_arrays(bn):
    from fkhls.emulate import emulator as emulate

    model, spec, _, _, _, _ = bn
    x = models.grid_inputs((4, 4, 1), 4, seed=3, fractional=3, scale=1.5)
    fault = BitFault("bn1", "scale", 0, 16)
    with pytest.raises(FaultSpecError, match="bn1.scale is an array computed for the hardware.*not a Keras variable.*exact"):
        emulate.faulty_model_outputs(model, fault, x, spec=spec, method="tf")
    before = [w.copy() for w in model.get_weights()]
    exact = emulate.faulty_model_outputs(model, fault, x, spec=spec, method="exact")
    assert exact.shape == (4, 3)
    for a, b in zip(before, model.get_weights()):
        assert_array_equal(a, b)
    kernel = emulate.faulty_model_outputs(model, BitFault("d1", "kernel", 0, 5), x, spec=spec, method="tf")
    assert kernel.shape == (4, 3)  # Keras kernels still go the FKeras way


def test_io_stream_batchnorm_arrays_are_registers(bn):
    """nnet_batchnorm_stream.h partitions scale and bias completely without instantiating the function: one
    register per element, so a memory address exists (word = element) and maps back."""
    from fkhls.faults.addressing import address_map
    from fkhls.project.export import ExportOptions, export_model

    model, _, _, _, _, base = bn
    manifest = export_model(model, base / "stream", ExportOptions(io_type="io_stream"))
    amap = address_map(manifest)
    layout = amap.layout("bn2", "bias")
    assert (layout.kind, layout.depth, layout.lanes, layout.source) == ("registers", 3, 1,
                                                                         "nnet_batchnorm_stream.h:normalize")
    hbit = amap.map_lbi("bn2", "bias", 16 + 3)  # word 1, bit 12
    assert (hbit.memory, hbit.memory_word, hbit.memory_bit) == ("registers", 1, 12)
    assert amap.from_memory_bit("bn2", 1, 12, tensor="bias") == hbit
