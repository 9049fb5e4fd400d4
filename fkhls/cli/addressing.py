"""``fkhls faultmap`` and ``fkhls locate``: the address map on the command line (thin: parse, call, print)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import click

from fkhls.core.errors import ProjectError

# Columns of a fault map, in order (docs/addressing.md describes each).
COLUMNS = (
    "scenario", "layer", "tensor", "lbi", "model_bit", "keras_index", "flat_index", "bit",
    "array", "element", "array_bit", "memory", "memory_word", "memory_bit", "lane",
    "memory_depth", "memory_word_width", "fkeras_type", "hardware_type", "value", "flipped_value", "note",
)


def fault_map_rows(manifest, fault_set) -> list[dict]:
    """One row per (scenario, faulty bit) with every coordinate of the bit (see COLUMNS)."""
    from fkhls.faults.addressing import address_map
    from fkhls.core.fixedpoint import cpp_type

    amap = address_map(manifest)
    pairs = [(scenario.name, fault) for scenario in fault_set.scenarios for fault in scenario.faults]
    hbits = amap.map_faults([fault for _, fault in pairs])
    before, after = amap.values_many(hbits)
    offsets = amap.model_bit_offsets()
    types = {key: tuple(cpp_type(t) for t in amap.types(*key)) for key in amap.tensors()}
    layouts = {key: amap.layout(*key) for key in amap.tensors()}
    rows = []
    for i, ((scenario, _), hbit) in enumerate(zip(pairs, hbits)):
        key = (hbit.layer, hbit.tensor)
        layout = layouts[key]
        has_memory = layout.kind is not None
        rows.append({
            "scenario": scenario, "layer": hbit.layer, "tensor": hbit.tensor, "lbi": hbit.lbi,
            "model_bit": offsets[key] + hbit.lbi, "keras_index": list(hbit.keras_index),
            "flat_index": hbit.flat_index, "bit": hbit.bit, "array": hbit.array, "element": hbit.element,
            "array_bit": hbit.array_bit, "memory": hbit.memory, "memory_word": hbit.memory_word,
            "memory_bit": hbit.memory_bit, "lane": hbit.element // layout.depth if has_memory else None,
            "memory_depth": layout.depth if has_memory else None,
            "memory_word_width": layout.word_width if has_memory else None,
            "fkeras_type": types[key][0], "hardware_type": types[key][1],
            "value": float(before[i]), "flipped_value": float(after[i]), "note": hbit.note,
        })
    return rows


def _csv_text(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else " ".join(map(str, v)) if isinstance(v, list) else v)
                         for k, v in row.items()})
    return buffer.getvalue()


def _json_text(manifest, faults_path: str, fault_set, rows: list[dict]) -> str:
    from dataclasses import asdict

    from fkhls.faults.addressing import address_map

    amap = address_map(manifest)
    memories = {amap.layout(*key).array: asdict(amap.layout(*key)) | {"word_width": amap.layout(*key).word_width}
                for key in amap.tensors()}
    data = {"project": str(manifest.project_dir), "faults": str(faults_path), "seed": fault_set.seed,
            "backend": manifest.backend, "io_type": manifest.io_type, "columns": list(COLUMNS),
            "memories": memories, "rows": rows}
    return json.dumps(data, indent=1) + "\n"


@click.command()
@click.argument("project_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--faults", "faults_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Fault-set file (JSON/YAML, FKeras regions/bits); ber < 1 regions are drawn with its seed.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Map to write: .csv or .json (chosen by the suffix).")
@click.option("--force", is_flag=True, help="Overwrite an existing output file.")
def faultmap(project_dir, faults_path, output, force) -> None:
    """Map every faulty bit of FAULTS to Keras, hls4ml array and weight-memory coordinates."""
    from fkhls.faults.addressing import spec_from_manifest
    from fkhls.faults.descriptors import load_fault_set
    from fkhls.core.files import atomic_write_text, check_output_file
    from fkhls.project.manifest import load_manifest

    output = Path(output)
    suffix = output.suffix.lower()
    if suffix not in (".csv", ".json"):
        raise ProjectError(f"output {str(output)!r} must end in .csv or .json")
    check_output_file(output, force, "output", golden=project_dir)
    manifest = load_manifest(project_dir)
    fault_set = load_fault_set(faults_path, spec_from_manifest(manifest))
    rows = fault_map_rows(manifest, fault_set)
    text = _csv_text(rows) if suffix == ".csv" else _json_text(manifest, faults_path, fault_set, rows)
    output.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(output, text)
    no_memory = sum(1 for r in rows if r["memory"] is None)
    click.echo(f"{len(rows)} faulty bits in {len(fault_set.scenarios)} scenarios mapped to {output}"
               + (f" ({no_memory} without a weight-memory address)" if no_memory else ""))


@click.command()
@click.argument("project_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--array", help="hls4ml weight array (w2, b2, ...).")
@click.option("--index", "element", type=int, help="Element inside --array.")
@click.option("--bit", type=int, help="Bit of the array word, from the LSB.")
@click.option("--layer", help="Layer whose weight memory --memory-word/--memory-bit address.")
@click.option("--tensor", type=click.Choice(["kernel", "bias"]), default="kernel", show_default=True,
              help="With --layer: which memory.")
@click.option("--memory-word", type=int, help="Word address in the layer's weight memory.")
@click.option("--memory-bit", type=int, help="Bit offset inside that (reshaped, wide) word.")
def locate(project_dir, array, element, bit, layer, tensor, memory_word, memory_bit) -> None:
    """Trace a hardware bit (array element/bit, or memory word/bit) back to its FKeras weight bit."""
    from fkhls.faults.addressing import address_map
    from fkhls.core.fixedpoint import cpp_type
    from fkhls.project.manifest import load_manifest

    by_array = array is not None or element is not None or bit is not None
    by_memory = layer is not None or memory_word is not None or memory_bit is not None
    if by_array == by_memory or (by_array and None in (array, element, bit)) or (
            by_memory and None in (layer, memory_word, memory_bit)):
        raise click.UsageError("give either --array, --index and --bit, or --layer, --memory-word and --memory-bit")
    amap = address_map(load_manifest(project_dir))
    if by_array:
        hbit = amap.from_array_bit(array, element, bit)
    else:
        hbit = amap.from_memory_bit(layer, memory_word, memory_bit, tensor)
    fk_type, hw_type = amap.types(hbit.layer, hbit.tensor)
    before, after = amap.values(hbit)
    layout = amap.layout(hbit.layer, hbit.tensor)
    memory = ("none" if hbit.memory is None else
              f"{hbit.memory} word {hbit.memory_word} bit {hbit.memory_bit} "
              f"({layout.depth} words x {layout.word_width} bits; {layout.directive})")
    lines = [
        ("layer", hbit.layer), ("tensor", hbit.tensor), ("keras_index", str(hbit.keras_index)),
        ("flat_index", hbit.flat_index), ("lbi", "none (no FKeras counterpart)" if hbit.lbi is None else hbit.lbi),
        ("bit", f"{hbit.bit} of {cpp_type(fk_type)} (from the LSB)" if hbit.bit is not None else "none"),
        ("array", f"{hbit.array}[{hbit.element}] bit {hbit.array_bit} of {cpp_type(hw_type)}"),
        ("memory", memory), ("value", f"{before!r} -> {after!r} after the flip"),
    ]
    if hbit.note:
        lines.append(("note", hbit.note))
    for name, value in lines:
        click.echo(f"{name:<12}{value}")


COMMANDS = [faultmap, locate]

__all__ = ["COMMANDS", "COLUMNS", "faultmap", "locate", "fault_map_rows"]
