"""The Python API: what the CLI does, for a notebook with the model in memory.

    import fkhls
    project = fkhls.export(model, "proj")             # an in-memory QKeras model, or a saved file
    project.verify(x).all_exact                        # golden parity, raw words
    faults = fkhls.FaultSet.from_regions(project, {"fc1": [fkhls.FaultyLayerBitRegion(0, 0, 1.0)]})
    project.faultmap(faults).to_pandas()               # every coordinate of every faulty bit
    project.crosscheck(faults, x).to_pandas()          # emulation vs C-sim per scenario
    project.campaign(x, "results", layers=["fc1"]).heatmap()

Results are objects with ``.to_pandas()``; plots are matplotlib Figures; long runs show a
tqdm.auto bar (a widget in Jupyter) unless ``progress=False``. Nothing here imports TensorFlow
until a step needs the Keras model (export, verify, crosscheck, the ``tf`` campaign engine).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from fkhls.core.errors import FkhlsError, ProjectError
from fkhls.faults.descriptors import FaultSet, FaultyLayerBitRegion
from fkhls.project.manifest import Manifest, load_manifest

__all__ = ["export", "Project", "FaultSet", "FaultyLayerBitRegion", "FaultMap", "Crosscheck", "Campaign",
           "FAULT_MAP_COLUMNS", "fault_map_rows"]

# Columns of a fault map, in order (the README's `fkhls faultmap` table describes each).
FAULT_MAP_COLUMNS = (
    "scenario", "layer", "tensor", "lbi", "model_bit", "keras_index", "flat_index", "bit",
    "array", "element", "array_bit", "memory", "memory_word", "memory_bit", "lane",
    "memory_depth", "memory_word_width", "fkeras_type", "hardware_type", "value", "flipped_value", "note",
)


def _pandas():
    try:
        import pandas
    except ImportError as exc:  # a pinned dependency; only missing in a broken install
        raise FkhlsError("to_pandas() needs pandas (pip install pandas==2.2.3)") from exc
    return pandas


def _bar(total: int, desc: str, progress: bool):
    """A tqdm.auto bar (widget in Jupyter, text on a terminal), or None when ``progress`` is off."""
    from fkhls.core.progress import progress_bar

    return progress_bar(total, desc, "scenario") if progress else None


# ----------------------------------------------------------------------------- fault maps


def fault_map_rows(manifest: Manifest, fault_set: FaultSet) -> list[dict]:
    """One row per (scenario, faulty bit) with every coordinate of the bit (``FAULT_MAP_COLUMNS``)."""
    from fkhls.core.fixedpoint import cpp_type
    from fkhls.faults.addressing import address_map

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


@dataclass(frozen=True)
class FaultMap:
    """Every faulty bit of a fault set in FKeras, Keras, hls4ml-array and weight-memory coordinates."""

    manifest: Manifest
    fault_set: FaultSet
    rows: tuple[dict, ...]

    def __len__(self) -> int:
        return len(self.rows)

    def to_pandas(self):
        return _pandas().DataFrame(list(self.rows), columns=list(FAULT_MAP_COLUMNS))

    def csv_text(self) -> str:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=FAULT_MAP_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in self.rows:
            writer.writerow({k: ("" if v is None else " ".join(map(str, v)) if isinstance(v, list) else v)
                             for k, v in row.items()})
        return buffer.getvalue()

    def json_text(self, faults_source: str | None = None) -> str:
        """The JSON form: the rows plus each array's memory layout and the directive it came from."""
        from fkhls.faults.addressing import address_map

        amap = address_map(self.manifest)
        memories = {amap.layout(*key).array: asdict(amap.layout(*key)) | {"word_width": amap.layout(*key).word_width}
                    for key in amap.tensors()}
        data = {"project": str(self.manifest.project_dir), "faults": faults_source, "seed": self.fault_set.seed,
                "backend": self.manifest.backend, "io_type": self.manifest.io_type,
                "columns": list(FAULT_MAP_COLUMNS), "memories": memories, "rows": list(self.rows)}
        return json.dumps(data, indent=1) + "\n"


# ----------------------------------------------------------------------------- cross-check and campaign results


@dataclass(frozen=True)
class Crosscheck:
    """A cross-check's outcome; ``report`` is the full ``fkhls.crosscheck.compare.CrosscheckReport``."""

    report: Any

    @property
    def all_exact(self) -> bool:
        return self.report.all_exact

    def to_pandas(self):
        """One row per scenario (the golden run first, scenario -1): words compared, exact, first divergence."""
        rows = []
        for s in (self.report.golden, *self.report.scenarios):
            if s is None:
                continue
            d = s.divergence
            rows.append({"scenario": s.index, "name": s.name, "n_bits": len(s.bits),
                         "outputs_compared": s.outputs_compared, "bit_exact": s.bit_exact, "exact": s.exact,
                         "max_lsb_diff": s.max_lsb_diff, "first_mismatch": s.first_mismatch,
                         "diverging_layer": d.layer if d else None, "cause": d.cause if d else None})
        return _pandas().DataFrame(rows)

    def write(self, directory: str | Path, force: bool = False) -> tuple[Path, Path]:
        """summary.json and report.md into ``directory``: a new, empty or earlier fkhls report directory (the
        last only with ``force``), never inside the golden project (``fkhls.core.files.check_output_dir``)."""
        from fkhls.core.files import CROSSCHECK, check_output_dir
        from fkhls.crosscheck.report import write_crosscheck_report

        check_output_dir(directory, force, "report directory", owner=CROSSCHECK, golden=self.report.project)
        return write_crosscheck_report(self.report, directory)


@dataclass(frozen=True)
class Campaign:
    """A finished (or interrupted) campaign; ``result`` is the runner's ``CampaignResult``."""

    result: Any

    @property
    def table(self):
        if self.result.table is None:
            raise ProjectError(f"campaign in {self.result.results_dir} is unfinished: run it again to resume")
        return self.result.table

    @property
    def results_dir(self) -> Path:
        return Path(self.result.results_dir)

    def to_pandas(self):
        """One row per fault scenario: every coordinate and metric (the columns of results.csv)."""
        return self.table.to_pandas()

    def heatmap(self, engine: str | None = None):
        """Layers x bit positions Figure (None for a campaign without single-bit rows)."""
        from fkhls.campaign.report import heatmap_figure

        return heatmap_figure(self.table, engine)

    def histograms(self, engine: str | None = None):
        from fkhls.campaign.report import histograms_figure

        return histograms_figure(self.table, engine)


# ----------------------------------------------------------------------------- the project


def _inputs(x: Any, what: str = "inputs") -> np.ndarray:
    if isinstance(x, (str, Path)):
        from fkhls.core.files import load_array

        return load_array(x, what)
    return np.asarray(x)


class Project:
    """An exported hls4ml project (its ``fkhls.json`` manifest), with every fkhls step as a method."""

    def __init__(self, manifest: Manifest):
        self.manifest = manifest

    @classmethod
    def open(cls, directory: str | Path) -> "Project":
        """An existing project made by ``fkhls.export`` / ``fkhls export`` (golden or faulty)."""
        return cls(load_manifest(directory))

    def __repr__(self) -> str:
        m = self.manifest
        return (f"Project({str(m.project_dir)!r}: {m.model_name}, {m.backend} {m.io_type} {m.strategy} "
                f"RF={m.reuse_factor}, {len(m.weighted_layers)} weighted layers)")

    @property
    def directory(self) -> Path:
        return Path(self.manifest.project_dir)

    @cached_property
    def spec(self):
        """Layer names, tensor shapes and word types from the manifest (no TensorFlow)."""
        from fkhls.faults.addressing import spec_from_manifest

        return spec_from_manifest(self.manifest)

    def model(self):
        """The project's copy of the QKeras model (imports TensorFlow)."""
        from fkhls.model.spec import load_keras_model

        return load_keras_model(self.manifest.model_path)

    def faults(self, source: str | Path | Mapping[str, Any] | FaultSet) -> FaultSet:
        """A fault set from a JSON/YAML file or a dict in the fault-set format, validated against this project."""
        from fkhls.faults.descriptors import load_fault_set

        return source if isinstance(source, FaultSet) else load_fault_set(source, self.spec)

    def verify(self, x: Any, model=None):
        """Golden parity: C-sim vs QKeras on ``x``, every output compared as a raw word (a ParityReport)."""
        from fkhls.crosscheck.parity import golden_parity

        return golden_parity(self.manifest, _inputs(x), model)

    def verify_layers(self, x: Any, model=None):
        """``fkhls verify``: golden parity plus a verdict per layer, exact or approximate by nature (a VerifyReport).

        ``.passed`` is verify's exit 0: exact layers bit for bit, approximate ones within their declared bounds.
        """
        from fkhls.crosscheck.verify import verify_project

        return verify_project(self.manifest, _inputs(x), model)

    def faultmap(self, faults: Any) -> FaultMap:
        fault_set = self.faults(faults)
        return FaultMap(self.manifest, fault_set, tuple(fault_map_rows(self.manifest, fault_set)))

    def locate(self, array: str | None = None, element: int | None = None, bit: int | None = None, *,
               layer: str | None = None, memory_word: int | None = None, memory_bit: int | None = None,
               tensor: str = "kernel"):
        """A hardware bit (``array, element, bit`` or ``layer, memory_word, memory_bit``) -> its HardwareBit."""
        from fkhls.faults.addressing import address_map

        by_array = (array, element, bit) != (None, None, None)
        by_memory = (layer, memory_word, memory_bit) != (None, None, None)
        if by_array == by_memory or (by_array and None in (array, element, bit)) or (
                by_memory and None in (layer, memory_word, memory_bit)):
            raise FkhlsError("give either array, element and bit, or layer, memory_word and memory_bit")
        amap = address_map(self.manifest)
        if by_array:
            return amap.from_array_bit(array, element, bit)
        return amap.from_memory_bit(layer, memory_word, memory_bit, tensor)

    def inject(self, faults: Any, output_dir: str | Path, force: bool = False) -> "Project":
        """A faulty copy with every bit of ``faults`` flipped in its weight files; ``.injection`` lists the words."""
        from fkhls.csim.inject import inject

        # A path or dict goes through as it is, so faults.json records where the faults came from.
        result = inject(self.directory, faults, output_dir, force=force)
        faulty = Project.open(result.project_dir)
        faulty.injection = result
        return faulty

    def csim(self, x: Any, raw: bool = False) -> np.ndarray:
        """The g++ C-sim's outputs (compiled once, cached): exact float64 values, or int64 raw words."""
        from fkhls.core.fixedpoint import from_raw
        from fkhls.csim.build import run_csim

        words = run_csim(self.manifest, _inputs(x))
        words = words.reshape(words.shape[0], *self.manifest.output_shape)
        return words if raw else from_raw(self.manifest.output_ptype, words)

    def crosscheck(self, faults: Any, x: Any, *, single_bits: bool = False, reference: str = "exact",
                   model=None, trace_samples: int = 16, workers: int = 1, progress: bool = True) -> Crosscheck:
        """Emulation vs C-sim for every scenario of ``faults`` (plus the golden run), bit for bit."""
        from fkhls.crosscheck.compare import crosscheck
        from fkhls.faults.descriptors import split_single_bits

        fault_set = self.faults(faults)
        if single_bits:
            fault_set = split_single_bits(fault_set)
        bar = _bar(len(fault_set.scenarios) + 1, "crosscheck", progress)
        try:
            report = crosscheck(self.manifest, fault_set, _inputs(x), model=model, reference=reference,
                                trace_samples=trace_samples, workers=workers,
                                progress=(lambda done, total: bar.update(done - bar.n)) if bar else None)
        finally:
            if bar is not None:
                bar.close()
        return Crosscheck(report)

    def campaign(self, x: Any, results_dir: str | Path, *, labels: Any = None, engine: str = "both",
                 ber: float | None = None, trials: int | None = None, seed: int | None = None,
                 layers: Sequence[str] | None = None, tensors: Sequence[str] | None = None,
                 bits: Iterable[int] | None = None, shard_size: int | None = None, workers: int | None = None,
                 force: bool = False, progress: bool = True) -> Campaign:
        """An exhaustive single-bit campaign (default) or, with ``ber``, ``trials`` and ``seed``, a BER campaign.

        ``x`` / ``labels`` are arrays or .npy paths; arrays are saved as ``inputs.npy`` / ``labels.npy`` in
        ``results_dir`` (the campaign records their hashes, so running it again resumes it).
        """
        from fkhls.campaign.runner import CampaignConfig, Selection, run_campaign

        results_dir = Path(results_dir)
        selection = Selection(mode="exhaustive" if ber is None else "ber",
                              layers=tuple(layers) if layers is not None else None,
                              tensors=tuple(tensors) if tensors is not None else None,
                              bits=tuple(int(b) for b in bits) if bits is not None else None, ber=ber,
                              trials=trials, seed=seed)
        arrays = {name: np.asarray(value) for name, value in (("inputs", x), ("labels", labels))
                  if value is not None and not isinstance(value, (str, Path))}
        inputs_path = results_dir / "inputs.npy" if "inputs" in arrays else Path(x)
        labels_path = None if labels is None else results_dir / "labels.npy" if "labels" in arrays else Path(labels)
        config = CampaignConfig(self.directory, inputs_path, engine, selection, labels_path, shard_size)
        return Campaign(run_campaign(config, results_dir, workers=workers, force=force, quiet=not progress,
                                     arrays=arrays))


def export(model_or_path: Any, output_dir: str | Path, *, backend: str = "Vivado", io_type: str = "io_parallel",
           strategy: str = "Latency", reuse_factor: int = 1, input_type: str | None = None,
           force: bool = False, weights: str | Path | None = None,
           softmax_implementation: str = "stable") -> Project:
    """Export a QKeras model (in memory, or a saved .h5 / SavedModel, or a .json architecture with ``weights``,
    the .h5 of its weights) to an exact hls4ml project.

    As hls4ml's ``convert_from_keras_model``, but every type is chosen so the hardware words equal
    QKeras's and read back before the project is handed out. An existing non-empty ``output_dir`` is
    refused unless ``force``. ``softmax_implementation`` is hls4ml's (stable, latency, argmax, legacy).
    """
    from fkhls.model.spec import DEFAULT_INPUT_TYPE
    from fkhls.project.export import ExportOptions, export_model

    options = ExportOptions(backend, io_type, strategy, reuse_factor, input_type or DEFAULT_INPUT_TYPE,
                            softmax_implementation)
    if weights is not None:
        from fkhls.model.spec import load_keras_model
        from fkhls.core.files import PROJECT, check_output_dir

        if not isinstance(model_or_path, (str, Path)):
            raise ProjectError("weights= goes with a .json architecture path, not an in-memory model")
        check_output_dir(output_dir, force, "project directory", owner=PROJECT)  # refuse before loading
        model_or_path = load_keras_model(model_or_path, weights)
    return Project(export_model(model_or_path, output_dir, options, force=force))
