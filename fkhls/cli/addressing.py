"""``fkhls faultmap`` and ``fkhls locate``: the address map on the command line, over ``fkhls.api.Project``."""

from __future__ import annotations

from pathlib import Path

import click

from fkhls.core.errors import ProjectError


@click.command()
@click.argument("project_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--faults", "faults_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Fault-set file (JSON/YAML, FKeras regions/bits); ber < 1 regions are drawn with its seed.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Map to write: .csv or .json (chosen by the suffix).")
@click.option("--force", is_flag=True, help="Overwrite an existing output file.")
def faultmap(project_dir, faults_path, output, force) -> None:
    """Map every faulty bit of FAULTS to Keras, hls4ml array and weight-memory coordinates."""
    from fkhls.api import Project
    from fkhls.core.files import atomic_write_text, check_output_file

    output = Path(output)
    suffix = output.suffix.lower()
    if suffix not in (".csv", ".json"):
        raise ProjectError(f"output {str(output)!r} must end in .csv or .json")
    check_output_file(output, force, "output", golden=project_dir)
    fault_map = Project.open(project_dir).faultmap(faults_path)
    rows, fault_set = fault_map.rows, fault_map.fault_set
    text = fault_map.csv_text() if suffix == ".csv" else fault_map.json_text(str(faults_path))
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
@click.option("--tensor", default="kernel", show_default=True,
              help="With --layer: which memory (kernel, bias, or another array of the layer, e.g. a batch norm's "
                   "scale; an unknown name lists the layer's).")
@click.option("--memory-word", type=int, help="Word address in the layer's weight memory.")
@click.option("--memory-bit", type=int, help="Bit offset inside that (reshaped, wide) word.")
def locate(project_dir, array, element, bit, layer, tensor, memory_word, memory_bit) -> None:
    """Trace a hardware bit (array element/bit, or memory word/bit) back to its FKeras weight bit."""
    from fkhls.api import Project
    from fkhls.core.fixedpoint import cpp_type
    from fkhls.faults.addressing import address_map

    by_array = array is not None or element is not None or bit is not None
    by_memory = layer is not None or memory_word is not None or memory_bit is not None
    if by_array == by_memory or (by_array and None in (array, element, bit)) or (
            by_memory and None in (layer, memory_word, memory_bit)):
        raise click.UsageError("give either --array, --index and --bit, or --layer, --memory-word and --memory-bit")
    project = Project.open(project_dir)
    hbit = project.locate(array, element, bit, layer=layer, memory_word=memory_word, memory_bit=memory_bit,
                          tensor=tensor)
    amap = address_map(project.manifest)
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

__all__ = ["COMMANDS", "faultmap", "locate"]
