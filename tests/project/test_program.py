"""fkhls.project.program on an io_stream top function: streams, clone_stream, a merge and an alias."""

from __future__ import annotations

import pytest

from fkhls.project.export import ExportOptions, export_model
from fkhls.project.program import read_program

from tests import models


@pytest.fixture(scope="module")
def residual_stream(tmp_path_factory):
    return export_model(models.build("residual"), tmp_path_factory.mktemp("program") / "residual",
                        ExportOptions(io_type="io_stream"))


def test_io_stream_calls_and_data_flow(residual_stream):
    """What the io_stream cone harness relies on: every variable a stream, each written once and read at most once,
    a clone writing two copies, an Add reading two streams, the Flatten alias resolved."""
    manifest = residual_stream
    program = read_program(manifest)
    assert [p.name for p in program.params] == [manifest.input_var, manifest.output_var]
    assert all(v.stream for v in (*program.params, *program.locals))
    calls = {c.layer: c for c in program.calls}
    clone = next(c for c in program.calls if c.function.startswith("nnet::clone_stream<"))
    assert len(clone.inputs) == 1 and len(clone.outputs) == 2
    add = calls["add"]
    assert add.function.startswith("nnet::add<") and len(add.inputs) == 2 and len(add.outputs) == 1
    assert clone.outputs[1] in add.inputs  # the skip connection's copy
    head = calls["head"]
    assert head.args[2:] == (manifest.layer("head").kernel.array, manifest.layer("head").bias.array)
    assert program.resolve(head.input) == program.resolve(calls["r2"].output) != head.input  # Flatten is an alias
    assert program.resolve(head.output) == manifest.output_var
    written = [program.resolve(v) for c in program.calls for v in c.outputs]
    read = [program.resolve(v) for c in program.calls for v in c.inputs]
    assert len(written) == len(set(written)) and len(read) == len(set(read))
    assert set(read) | {manifest.output_var} == set(written) | {manifest.input_var}
