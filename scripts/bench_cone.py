"""Per-fault cost of the cone harness vs the reference harness vs a per-fault recompile, in one run.

    .venv/bin/python scripts/bench_cone.py [--samples 1000] [--recompiles 2] [--reference-faults 100]
                                           [--workers 2] [--no-emulate] [--stream-faults 200]
                                           [--cnn-samples 50] [--no-cnn] [--stream-only]

On the demo model (16-64-32-32-5, 6-bit weights), fresh build cache so every g++ run is real:
  (a) naive: `inject` a faulty copy + g++ build of its C-sim + run, for a couple of faults;
  (b) reference harness (fkhls.csim.harness): one binary, full top function per fault, a seeded sample;
  (c) cone harness (fkhls.csim.cone): all 26,334 single-bit faults (every bit of every weight and
      bias), ``--workers`` processes;
  (d) unless --no-emulate: the exact emulator's batched engine on the same 26,334 faults, and the
      cross-check of the whole campaign (cone == emulator, every word);
  (e) io_stream (fkhls.csim.cone_stream against the reference harness, one process each, the same
      seeded sample of ``--stream-faults`` single-bit faults, every word compared): the demo model
      exported io_stream at ``--samples`` inputs, and unless --no-cnn bench_scale.py's io_stream CNN
      (16x16x3 -> conv 16 -> conv 32 /2 -> dense 48 -> dense 10, 8-bit) at ``--cnn-samples`` inputs; the
      line names the calls that take the io_stream delta and those that take the sparse input step.
The cone rows are also checked against (a) and (b). Prints wall time, CPU time of the harness
processes, ms per fault, fault x samples per second and the ratios against the naive way.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

DATA = Path(__file__).resolve().parent.parent / "fkhls" / "data"


def child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1000, help="inputs per fault")
    parser.add_argument("--recompiles", type=int, default=2, help="faults timed through inject + g++ build + run")
    parser.add_argument("--reference-faults", type=int, default=100, help="faults run through the reference harness")
    parser.add_argument("--workers", type=int, default=2, help="cone harness processes")
    parser.add_argument("--no-emulate", action="store_true", help="skip the emulator engine and full cross-check")
    parser.add_argument("--stream-faults", type=int, default=200, help="io_stream: faults through both harnesses")
    parser.add_argument("--cnn-samples", type=int, default=50, help="io_stream CNN: inputs per fault")
    parser.add_argument("--no-cnn", action="store_true", help="io_stream: the demo model only")
    parser.add_argument("--stream-only", action="store_true", help="only (e), the io_stream lines")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="fkhls-bench-cone-") as tmp:
        tmp = Path(tmp)
        os.environ["FKHLS_CACHE_DIR"] = str(tmp / "cache")  # every build below really compiles
        if args.stream_only:
            for row in stream_lines(args, tmp):
                print(row)
            return
        from fkhls.csim import build as csim
        from fkhls.faults.addressing import map_faults, spec_from_manifest
        from fkhls.csim.inject import inject_bits
        from fkhls.csim.cone import build_cone_harness, cone_support, run_cone_harness
        from fkhls.project.export import ExportOptions, export_model
        from fkhls.faults.descriptors import BitFault
        from fkhls.csim.harness import build_harness, run_fault_harness
        from fkhls.project.manifest import load_manifest

        manifest = export_model(DATA / "demo_model.h5", tmp / "golden", ExportOptions())
        x = np.load(DATA / "demo_inputs.npy")
        x = np.resize(x, (args.samples, x.shape[1]))
        x_raw = csim.input_words(manifest, x)
        # Every bit of every kernel and bias, in FKeras model-bit order, and its hardware coordinate.
        faults = [BitFault(t.layer, t.tensor, lbi, t.width) for t in spec_from_manifest(manifest).tensors()
                  for lbi in range(t.n_bits)]
        scenarios = [[(h.array, h.element, h.array_bit)] for h in map_faults(manifest, faults)]
        n_faults = len(scenarios)
        support = cone_support(manifest)[1]
        rng = np.random.default_rng(0)
        sample = np.sort(rng.choice(n_faults, size=min(args.reference_faults, n_faults), replace=False))

        # (c) cone harness, every fault
        t0 = time.perf_counter()
        cone_binary = build_cone_harness(manifest)
        t_cone_build = time.perf_counter() - t0
        cpu0, t0 = child_cpu(), time.perf_counter()
        y = run_cone_harness(manifest, x_raw, scenarios, binary=cone_binary, workers=args.workers,
                             out_path=tmp / "cone.bin")
        t_cone, cpu_cone = time.perf_counter() - t0, child_cpu() - cpu0

        # (b) reference harness on a sample
        t0 = time.perf_counter()
        reference_binary = build_harness(manifest)
        t_ref_build = time.perf_counter() - t0
        cpu0, t0 = child_cpu(), time.perf_counter()
        y_ref = run_fault_harness(manifest, x_raw, [scenarios[i] for i in sample], binary=reference_binary)
        t_ref, cpu_ref = time.perf_counter() - t0, child_cpu() - cpu0
        t0 = time.perf_counter()
        run_fault_harness(manifest, x_raw, [[]], binary=reference_binary)
        t_ref_overhead = time.perf_counter() - t0  # process start, weight load, one golden pass
        assert np.array_equal(np.asarray(y[sample]), y_ref), "cone and reference harness disagree"

        # (a) naive: inject + recompile + run, a couple of faults
        t_naive = []
        for k, index in enumerate(sample[: args.recompiles]):
            t0 = time.perf_counter()
            faulty = inject_bits(manifest.project_dir, tmp / f"faulty{k}", scenarios[index])
            words = csim.run_csim(load_manifest(faulty.project_dir), x)
            t_naive.append(time.perf_counter() - t0)
            assert np.array_equal(words, y[index]), f"cone harness and inject+csim disagree on {scenarios[index]}"
        per_naive = float(np.mean(t_naive))

        # (d) the other engine on the whole campaign, and the full cross-check
        t_emulate = None
        if not args.no_emulate:
            from fkhls.emulate.emulator import evaluate_single_bit_faults, golden_weights
            from fkhls.model.spec import describe_model, load_keras_model

            model = load_keras_model(manifest.model_path)
            spec = describe_model(model, manifest.input_type["cpp"])
            weights = golden_weights(model, spec)
            t0 = time.perf_counter()
            y_emu = evaluate_single_bit_faults(spec, weights, x_raw.reshape(len(x_raw), *manifest.input_shape), faults)
            t_emulate = time.perf_counter() - t0
            t0 = time.perf_counter()
            mismatched = int((np.asarray(y) != y_emu.reshape(y.shape)).any(axis=(1, 2)).sum())
            t_compare = time.perf_counter() - t0
            assert mismatched == 0, f"{mismatched} faults differ between the cone harness and the emulator"

        # (e) io_stream: the stream cone harness against the reference harness, same faults, same run
        stream_rows = stream_lines(args, tmp)

    per_ref = (t_ref - t_ref_overhead) / len(sample)
    per_cone = t_cone / n_faults
    fs = n_faults * args.samples
    print(f"demo model 16-64-32-32-5, {args.samples} samples, {n_faults:,} single-bit faults, {os.cpu_count()} cores")
    print(f"cone support: {support}")
    print(f"builds: cone harness {t_cone_build:.1f} s, reference harness {t_ref_build:.1f} s")
    print(f"naive (inject + g++ + run), {len(t_naive)} faults:   {per_naive * 1e3:10.1f} ms/fault  "
          f"{args.samples / per_naive:14,.0f} fault x samples/s")
    print(f"reference harness, {len(sample)} faults:        {per_ref * 1e3:10.2f} ms/fault  "
          f"{args.samples / per_ref:14,.0f} fault x samples/s  ({cpu_ref:.1f} s CPU, "
          f"{t_ref_overhead:.2f} s start-up excluded)")
    print(f"cone harness, all faults, {args.workers} workers:  {per_cone * 1e3:10.3f} ms/fault  "
          f"{fs / t_cone:14,.0f} fault x samples/s  (wall {t_cone:.1f} s, CPU {cpu_cone:.1f} s = "
          f"{cpu_cone / n_faults * 1e3:.2f} ms/fault per core)")
    print(f"ratio naive / reference harness:  {per_naive / per_ref:10.0f} x")
    print(f"ratio naive / cone harness:       {per_naive / per_cone:10.0f} x  (per core: "
          f"{per_naive / (cpu_cone / n_faults):.0f} x)")
    print(f"ratio reference / cone harness:   {per_ref / per_cone:10.1f} x")
    print(f"campaign at these rates: naive {per_naive * n_faults / 3600:.1f} h, reference {per_ref * n_faults:.0f} s, "
          f"cone {t_cone:.0f} s")
    if t_emulate is not None:
        print(f"emulator engine, all faults:      {t_emulate:10.1f} s; full cross-check cone == emulator on "
              f"{n_faults:,} x {args.samples} x 5 words: yes ({t_compare:.1f} s)")
        print(f"whole campaign through both engines, cross-checked: {t_cone + t_emulate + t_compare:.0f} s "
              "(builds excluded)")
    print("cone == reference harness on the sampled faults, == inject + csim on the recompiled ones: yes")
    for row in stream_rows:
        print(row)


def stream_lines(args, tmp: Path) -> list[str]:
    """(e): the demo model exported io_stream and, unless --no-cnn, bench_scale.py's io_stream CNN."""
    x = np.load(DATA / "demo_inputs.npy")
    rows = [stream_line("demo model, io_stream", DATA / "demo_model.h5", np.resize(x, (args.samples, x.shape[1])),
                        args.stream_faults, tmp / "stream_demo")]
    if not args.no_cnn:
        from bench_scale import cnn_model, grid_inputs  # scripts/ is on sys.path when this script runs

        rows.append(stream_line("io_stream CNN (bench_scale)", cnn_model(), grid_inputs((16, 16, 3), args.cnn_samples),
                                args.stream_faults, tmp / "stream_cnn"))
    return rows


def stream_line(label: str, model, x: np.ndarray, n_faults: int, out: Path) -> str:
    """Export MODEL io_stream, run one seeded sample of its single-bit faults through the io_stream cone harness and
    the reference harness (one process each, start-up and golden pass included in both), check every word."""
    from fkhls.csim import build as csim
    from fkhls.csim.cone import build_cone_harness, cone_plan, run_cone_harness
    from fkhls.csim.cone_stream import sparse_layers
    from fkhls.csim.harness import build_harness, run_fault_harness
    from fkhls.project.export import ExportOptions, export_model

    manifest = export_model(model, out, ExportOptions(io_type="io_stream"))
    plan = cone_plan(manifest)
    assert plan.supported, plan.reason
    delta = ", ".join(d.layer for d in plan.delta) or "no layer"
    sparse = ", ".join(d.layer for d in sparse_layers(plan.delta, plan.array_calls)) or "no layer"
    x_raw = csim.input_words(manifest, x)
    pool = [(a.array, e, b) for a in manifest.arrays() for e in range(a.size) for b in range(a.ptype.width)]
    rng = np.random.default_rng(1)
    scenarios = [[pool[i]] for i in np.sort(rng.choice(len(pool), size=min(n_faults, len(pool)), replace=False))]
    t0 = time.perf_counter()
    cone_binary, reference_binary = build_cone_harness(manifest), build_harness(manifest)
    t_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    y = run_cone_harness(manifest, x_raw, scenarios, binary=cone_binary)
    t_cone = time.perf_counter() - t0
    t0 = time.perf_counter()
    y_ref = run_fault_harness(manifest, x_raw, scenarios, binary=reference_binary)
    t_ref = time.perf_counter() - t0
    assert np.array_equal(y, y_ref), f"{label}: io_stream cone and reference harness disagree"
    fs = len(scenarios) * len(x_raw)
    return (f"(e) {label}, {len(pool):,} faults, seeded sample of {len(scenarios)} x {len(x_raw)} samples, 1 process "
            f"each (builds {t_build:.0f} s): reference harness {fs / t_ref:12,.0f} fault x samples/s "
            f"({t_ref / len(scenarios) * 1e3:.1f} ms/fault); io_stream cone harness {fs / t_cone:12,.0f} fault x "
            f"samples/s ({t_cone / len(scenarios) * 1e3:.1f} ms/fault); ratio {t_ref / t_cone:.1f} x; every word equal"
            f"; delta on {delta}; sparse input step on {sparse}")


if __name__ == "__main__":
    main()
