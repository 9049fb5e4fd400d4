"""QKeras model -> hls4ml project whose fixed-point words equal the QKeras quantizer grids.

hls4ml's defaults are not exact for QKeras (narrow accumulators, unsigned weights typed
signed with one fractional bit lost, literals printed with too few decimals), and a type set
in the config dict does not override a quantizer-derived weight type. So export converts,
then sets every type itself on hls4ml's model objects (``WeightVariable.update_precision``
also fixes the literal format), writes the project, and reads back what hls4ml generated
(typedefs, reuse factors, strategies, weight files) before recording it in the manifest.
Anything that does not match is refused: a project is only handed out if it is exact.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from fkhls.core.errors import ProjectError, UnsupportedModelError
from fkhls.core.files import PROJECT, check_output_dir, staged_directory
from fkhls.core.fixedpoint import FixedPrecisionType, cpp_type, parse_type, to_raw, type_to_dict
from fkhls.project.manifest import MODEL_COPY_NAME, ArrayRecord, LayerRecord, Manifest
from fkhls.project.readback import config_struct as _config_struct
from fkhls.project.readback import read_parameters as _read_parameters
from fkhls.project.readback import read_typedefs as _typedefs
from fkhls.project.readback import retarget_hls4ml_config
from fkhls.project.weights import read_txt_values
from fkhls.model.layers import handler_for_kind
from fkhls.model.layers.softmax import IMPLEMENTATIONS as SOFTMAX_IMPLEMENTATIONS
from fkhls.model.spec import (
    DEFAULT_INPUT_TYPE,
    LayerSpec,
    ModelSpec,
    describe_model,
    load_keras_model,
    model_hash,
    quiet_tensorflow,
)

BACKENDS = ("Vivado", "Vitis")
IO_TYPES = ("io_parallel", "io_stream")
STRATEGIES = ("Latency", "Resource")
PROJECT_NAME = "myproject"

# hls4ml classes that carry no arithmetic of their own: their output type is their input type.
_PASS_THROUGH = {"ZeroPadding1D", "ZeroPadding2D", "Reshape", "Transpose", "Repack", "Clone"}
# hls4ml's build_lib.sh pastes the project path into a C string literal (-D WEIGHTS_DIR="\"$BASEDIR/...\""), so
# these characters would end the literal: a compile error, or code run by the compiler. fkhls's own builds never
# put a path into the compiler's input, but a project is also meant for hls4ml's compile() and Vivado.
_UNSAFE_FOR_HLS4ML = {'"': "a double quote", "\\": "a backslash"}


@dataclass(frozen=True)
class ExportOptions:
    backend: str = "Vivado"
    io_type: str = "io_parallel"
    strategy: str = "Latency"
    reuse_factor: int = 1
    input_type: str = DEFAULT_INPUT_TYPE
    softmax_implementation: str = "stable"  # hls4ml's default (fpga_backend.py); latency, argmax, legacy

    def validate(self) -> None:
        if self.backend not in BACKENDS:
            raise ProjectError(f"backend {self.backend!r} is not supported (choose from {', '.join(BACKENDS)})")
        if self.io_type not in IO_TYPES:
            raise ProjectError(f"io type {self.io_type!r} is not supported (choose from {', '.join(IO_TYPES)})")
        if self.strategy not in STRATEGIES:
            raise ProjectError(f"strategy {self.strategy!r} is not supported (choose from {', '.join(STRATEGIES)})")
        if not isinstance(self.reuse_factor, int) or self.reuse_factor < 1:
            raise ProjectError(f"reuse factor {self.reuse_factor!r} must be an integer >= 1")
        parse_type(self.input_type)
        if self.softmax_implementation not in SOFTMAX_IMPLEMENTATIONS:
            raise ProjectError(f"softmax implementation {self.softmax_implementation!r} is not supported (choose from "
                               f"{', '.join(SOFTMAX_IMPLEMENTATIONS)})")


def check_project_path(path: str | Path, what: str = "project directory") -> None:
    """Refuse a project path that hls4ml's own build (build_lib.sh) would paste into C++ as code."""
    text = str(Path(path).resolve())
    for char, name in _UNSAFE_FOR_HLS4ML.items():
        if char in text:
            raise ProjectError(f"{what} {str(path)!r} contains {name}: hls4ml's build_lib.sh would paste it into a "
                               "C++ string literal; choose a path without double quotes or backslashes")
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise ProjectError(f"{what} {str(path)!r} contains a control character (newline, tab ...); choose a plain path")


def export_model(model_or_path, output_dir: str | Path, options: ExportOptions = ExportOptions(),
                 force: bool = False) -> Manifest:
    """Export a QKeras model (object or saved file) to an exact hls4ml project at ``output_dir``."""
    options.validate()
    check_project_path(output_dir)
    check_output_dir(output_dir, force, "project directory", owner=PROJECT)  # refuse before loading anything
    model = load_keras_model(model_or_path) if isinstance(model_or_path, (str, Path)) else model_or_path
    quiet_tensorflow()
    spec = describe_model(model, options.input_type, softmax_implementation=options.softmax_implementation)
    output_dir = Path(output_dir).resolve()
    with staged_directory(output_dir, force, "project directory", owner=PROJECT) as staging:
        hls_model = _convert(model, spec, options, staging)
        matches = _match_layers(spec, hls_model)
        _apply_types(spec, matches, hls_model)
        with contextlib.redirect_stdout(io.StringIO()):
            hls_model.write()
        model.save(staging / MODEL_COPY_NAME, include_optimizer=False)
        manifest = _read_back(model, spec, options, matches, hls_model, staging)
        manifest.write(staging / "fkhls.json")
        retarget_hls4ml_config(staging, staging, output_dir)
    return replace(manifest, project_dir=output_dir)


def _convert(model, spec: ModelSpec, options: ExportOptions, output_dir: Path):
    import hls4ml

    config = hls4ml.utils.config_from_keras_model(model, granularity="name", backend=options.backend)
    config["Model"]["Strategy"] = options.strategy
    config["Model"]["ReuseFactor"] = options.reuse_factor
    for layer_config in config.get("LayerName", {}).values():
        layer_config["ReuseFactor"] = options.reuse_factor
        layer_config["Strategy"] = options.strategy
    sources = spec.sources()
    for index, step in enumerate(spec.layers):  # per-kind config (e.g. batch norm keeps hls4ml from fusing it)
        previous = spec.layers[sources[index][0]] if sources[index] else None
        handler_for_kind(step.kind).hls_config(step, previous, config)
    log = io.StringIO()
    try:
        with contextlib.redirect_stdout(log):
            return hls4ml.converters.convert_from_keras_model(
                model, hls_config=config, output_dir=str(output_dir), project_name=PROJECT_NAME,
                backend=options.backend, io_type=options.io_type,
            )
    except Exception as exc:
        raise UnsupportedModelError(f"hls4ml could not convert model {spec.name!r}: {exc}") from exc


@dataclass
class _Match:
    """A step, the hls4ml layer computing it (None if folded), and the layer whose output holds its value."""

    step: LayerSpec
    layer: object | None
    holder: object | None


def _match_layers(spec: ModelSpec, hls_model) -> list[_Match]:
    """Pair every fkhls step with the hls4ml layer that computes it (each kind's handler says which).

    hls4ml lists its layers in Keras's order, as ``spec.layers`` is, with layers of its own
    inserted (Clone for a stream read twice, padding for io_stream 'same' convs ...), which are
    skipped. hls4ml folds some steps away (``handler.folds``): Flatten/Dropout/linear (the value is
    unchanged) and a quantized_bits activation (its type becomes the output type of the layer
    before it, which is the same cast of the exact accumulator). The folded step's value then
    lives in the output of the layer computing the step it reads. Then the graph is checked:
    every matched layer must read the layers holding the values its step reads, in order
    (``_check_graph``), so a graph hls4ml wired differently is refused, not mis-mapped.
    """
    hls_layers = list(hls_model.get_layers())
    skippable = _PASS_THROUGH - {"Reshape"}  # layers hls4ml inserts itself (padding for io_stream 'same' convs ...)
    sources = spec.sources()
    readers = [0] * len(spec.layers)
    for srcs in sources:
        for j in srcs:
            readers[j] += 1
    matches: list[_Match] = []
    position = 0
    for i, step in enumerate(spec.layers):
        handler = handler_for_kind(step.kind)
        while (position < len(hls_layers) and hls_layers[position].class_name in skippable
               and not handler.hls_matches(step, hls_layers[position])):
            position += 1
        candidate = hls_layers[position] if position < len(hls_layers) else None
        if candidate is not None and handler.hls_matches(step, candidate):
            matches.append(_Match(step, candidate, candidate))
            position += 1
        elif handler.folds(step) and len(sources[i]) == 1:
            source = matches[sources[i][0]]
            matches.append(_Match(step, None, source.holder))
            if handler.hides_previous(step):
                if readers[sources[i][0]] > 1:
                    raise UnsupportedModelError(
                        f"hls4ml folds {step.name!r} ({step.kind} {step.activation or ''}) into the output type of "
                        f"{source.step.name!r}, which other layers read too: hls4ml would hand them the quantized "
                        f"value instead of {source.step.name!r}'s; quantize {source.step.name!r} before it branches "
                        "(its own activation), or give each reader its own quantizer")
                source.holder = None  # the exact accumulator is no longer materialized
        else:
            got = (f"{candidate.name!r} ({candidate.class_name}"
                   f"{', ' + str(candidate.get_attr('activation')) if candidate.class_name == 'Activation' else ''})"
                   if candidate is not None else "nothing")
            raise UnsupportedModelError(
                f"hls4ml's layer list does not follow the model: for {step.name!r} ({step.kind}"
                f"{' ' + step.activation if step.activation else ''}) it built {got}"
            )
    extra = [f"{layer.name} ({layer.class_name})" for layer in hls_layers[position:] if layer.class_name not in skippable]
    if extra:
        raise UnsupportedModelError(f"hls4ml built layers fkhls cannot account for: {extra}")
    _check_graph(spec, matches, hls_layers, skippable)
    return matches


def _carriers(spec: ModelSpec, matches: list[_Match]) -> list:
    """Per step, the hls4ml layer whose output carries its value (a folded step's is that of the step it reads)."""
    sources = spec.sources()
    carriers: list = []
    for i, match in enumerate(matches):
        carriers.append(match.layer if match.layer is not None else carriers[sources[i][0]])
    return carriers


def _check_graph(spec: ModelSpec, matches: list[_Match], hls_layers: list, skippable: set) -> None:
    """Every matched hls4ml layer reads, in order, the layers carrying its step's inputs (through inserted layers)."""
    producer = {name: layer for layer in hls_layers for name in layer.outputs}
    carriers = _carriers(spec, matches)
    sources = spec.sources()

    def origin(name: str):
        layer = producer.get(name)
        while layer is not None and layer.class_name in skippable and layer not in carriers:
            layer = producer.get(layer.inputs[0])
        return layer

    for i, match in enumerate(matches):
        if match.layer is None or not sources[i]:
            continue
        expected = [carriers[j] for j in sources[i]]
        actual = [origin(name) for name in match.layer.inputs]
        if actual != expected:
            def names(layers):
                return [layer.name if layer is not None else None for layer in layers]
            raise UnsupportedModelError(
                f"hls4ml's graph differs from the model at {match.step.name!r}: its layer {match.layer.name!r} reads "
                f"{names(actual)}, the model's step reads {names(expected)} (the values of "
                f"{[spec.layers[j].name for j in sources[i]]}); refusing a project whose layers fkhls cannot map"
            )


def _output_types(matches: list[_Match]) -> dict[str, FixedPrecisionType]:
    """The type each hls4ml layer's output must have: that of the last step whose value it holds."""
    types: dict[str, FixedPrecisionType] = {}
    for match in matches:
        if match.holder is not None:
            types[match.holder.name] = match.step.result_type
    return types


def _hw(ptype: FixedPrecisionType) -> FixedPrecisionType:
    """A fresh copy of the type wrapped as the ap_ types the Vivado/Vitis writers print."""
    from hls4ml.backends.fpga.fpga_types import APTypeConverter

    fresh = FixedPrecisionType(ptype.width, ptype.integer, ptype.signed, ptype.rounding_mode,
                               ptype.saturation_mode, ptype.saturation_bits)
    return APTypeConverter().convert(fresh)


def _set_output_type(layer, ptype: FixedPrecisionType) -> None:
    layer.get_output_variable().type.precision = _hw(ptype)
    if "result_t" in layer.types:
        layer.types["result_t"].precision = _hw(ptype)


def _apply_types(spec: ModelSpec, matches: list[_Match], hls_model) -> None:
    """Set every type on hls4ml's objects; pass-through layers inherit their input's type."""
    output_types = _output_types(matches)
    for match in matches:
        step, layer = match.step, match.layer
        if layer is None:
            continue
        _set_output_type(layer, output_types[layer.name])
        handler_for_kind(step.kind).set_hls_types(step, layer, _hw)
    for layer in hls_model.get_layers():
        if layer.class_name in _PASS_THROUGH:
            source = layer.get_input_variable().type.precision
            if isinstance(source, FixedPrecisionType):
                _set_output_type(layer, source)
                for name in layer.outputs[1:]:  # a Clone's other copies
                    layer.get_output_variable(name).type.precision = _hw(source)


def _same(a: FixedPrecisionType, b: FixedPrecisionType) -> bool:
    return type_to_dict(a) == type_to_dict(b)


def _check_type(typedefs: dict, type_name: str, expected: FixedPrecisionType, what: str) -> None:
    got = typedefs.get(type_name)
    if not isinstance(got, FixedPrecisionType) or not _same(got, expected):
        raise UnsupportedModelError(
            f"hls4ml generated {type_name} = {got if isinstance(got, str) else cpp_type(got) if got else 'nothing'} "
            f"for {what}, expected {cpp_type(expected)}: refusing a project that would not be exact"
        )


def _array_record(step: LayerSpec, slot: str, layer, values: np.ndarray, project: Path,
                  typedefs: dict) -> ArrayRecord:
    """Find how hls4ml ordered the tensor in ``slot`` (kernel: the multiplier, bias: the addend) by reading its
    .txt back, and check every word."""
    spec = step.kernel if slot == "kernel" else step.bias
    tensor = spec.tensor
    handler = handler_for_kind(step.kind)
    variable = layer.get_weights(handler.hls_weights[0 if slot == "kernel" else 1])
    _check_type(typedefs, variable.type.name, spec.ptype, f"{step.name} {tensor}")
    written = read_txt_values(project / "firmware" / "weights" / f"{variable.name}.txt", spec.ptype)
    header = (project / "firmware" / "weights" / f"{variable.name}.h").read_text()
    if f"{variable.type.name} {variable.name}[{values.size}]" not in header:
        raise UnsupportedModelError(f"{variable.name}.h does not declare {variable.type.name} {variable.name}[{values.size}]")
    raw_written = to_raw(spec.ptype, written, what=f"{variable.name}.txt")
    expected_raw = to_raw(spec.ptype, values, what=f"{step.name} {tensor}")
    identity = tuple(range(values.ndim))
    resource = bool(layer.get_attr("_weights_transposed", False))
    axes = getattr(handler, "resource_axes", identity)
    candidates = [axes, identity] if (resource and slot == "kernel") else [identity]
    for axes in candidates:
        if raw_written.size == values.size and np.array_equal(raw_written, expected_raw.transpose(axes).ravel()):
            order = "keras" if axes == identity else "transposed"
            return ArrayRecord(tensor=tensor, array=variable.name, type_name=variable.type.name,
                               type=type_to_dict(spec.ptype), keras_shape=tuple(values.shape), axes=tuple(axes),
                               order=order, size=int(values.size), owner=spec.layer)
    raise UnsupportedModelError(
        f"{variable.name}.txt does not hold the QKeras {tensor} of {step.name!r} in any known element order"
    )


def _exactness(step: LayerSpec) -> str:
    return f"approximate by nature: {step.approximate}" if step.approximate else "exact"


def _read_back(model, spec: ModelSpec, options: ExportOptions, matches, hls_model, project: Path) -> Manifest:
    typedefs = _typedefs(project)
    parameters = _read_parameters(project)
    records: list[LayerRecord] = []
    changed_rf: dict[str, int] = {}
    sources = spec.sources()
    for index, match in enumerate(matches):
        step, layer, holder = match.step, match.layer, match.holder
        inputs = tuple(spec.layers[j].name for j in sources[index])
        # The C variable that holds this step's value (None when hls4ml no longer materializes it).
        out_var = holder.get_output_variable() if holder is not None else None
        if out_var is not None:
            _check_type(typedefs, out_var.type.name, step.result_type, f"the output of {step.name}")
        if layer is None:
            records.append(LayerRecord(name=step.name, keras_name=step.keras_name, kind=step.kind, hls_name=None,
                                       hls_index=None, hls_class=None, output_var=out_var.name if out_var else None,
                                       result_type=type_to_dict(step.result_type), exactness=_exactness(step),
                                       inputs=inputs))
            continue
        for type_name, expected, what in handler_for_kind(step.kind).hls_type_checks(step, layer):
            _check_type(typedefs, type_name, expected, what)
        config_checks = handler_for_kind(step.kind).hls_config_checks(step, layer)
        struct = _config_struct(parameters, layer) if config_checks else {}
        for member, expected, what in config_checks:
            if str(struct.get(member)).replace(" ", "") != expected.replace(" ", ""):
                raise UnsupportedModelError(f"hls4ml generated {member} = {struct.get(member)} for {what}, expected "
                                            f"{expected}: refusing a project that would not be exact")
        fields = dict(name=step.name, keras_name=step.keras_name, kind=step.kind, hls_name=layer.name,
                      hls_index=int(layer.index), hls_class=layer.class_name,
                      output_var=out_var.name if out_var else None, result_type=type_to_dict(step.result_type),
                      exactness=_exactness(step), inputs=inputs)
        if step.accum_type is not None:
            fields["accum_type"] = type_to_dict(step.accum_type)
        if step.kernel is not None:
            struct = _config_struct(parameters, layer)
            if step.accum_type is not None:
                accum_name = struct.get("accum_t", layer.types["accum_t"].name)
                _check_type(typedefs, accum_name, step.accum_type, f"the accumulator of {step.name}")
            keras_layer = model.get_layer(step.keras_name)
            values = handler_for_kind(step.kind).tensor_values  # the exact values of each slot's words
            kernel = _array_record(step, "kernel", layer, values(keras_layer, step.kernel), project, typedefs)
            bias = (_array_record(step, "bias", layer, values(keras_layer, step.bias), project, typedefs)
                    if step.bias is not None else None)
            strategy_text = struct.get("strategy", "")
            strategy = "Resource" if "resource" in strategy_text else "Latency" if "latency" in strategy_text else (
                str(layer.get_attr("strategy") or options.strategy).capitalize())
            reuse = int(struct.get("reuse_factor", layer.get_attr("reuse_factor")))
            if reuse != options.reuse_factor:
                changed_rf[step.name] = reuse
            n_in = step.n_terms
            n_out = step.kernel.shape[-1]
            fields.update(accum_type=type_to_dict(step.accum_type) if step.accum_type else None, strategy=strategy,
                          reuse_factor=reuse, n_in=n_in, n_out=n_out, kernel=kernel, bias=bias)
        records.append(LayerRecord(**fields))
    input_layer = matches[0].layer
    output_layer = matches[-1].holder
    return Manifest(
        project_dir=project, project_name=PROJECT_NAME, backend=options.backend, io_type=options.io_type,
        strategy=options.strategy, reuse_factor=options.reuse_factor,
        input_type=type_to_dict(spec.input_type), output_type=type_to_dict(spec.output_type),
        input_shape=spec.input_shape, output_shape=spec.layers[-1].output_shape,
        input_var=input_layer.get_output_variable().name, output_var=output_layer.get_output_variable().name,
        layers=tuple(records), model_name=spec.name, model_hash=model_hash(model), model_file=MODEL_COPY_NAME,
        versions=_versions(), requested={"reuse_factor": options.reuse_factor, "changed_reuse_factor": changed_rf,
                                           "softmax_implementation": options.softmax_implementation},
    )


def _versions() -> dict:
    from fkhls.core.versions import python_tool_versions

    return python_tool_versions()
