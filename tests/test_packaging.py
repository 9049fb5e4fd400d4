"""A wheel built from the checkout is complete and works when installed (not editable).

The checkout's files (tracked and new, as git sees them) are copied to a clean directory, built
with ``pip wheel --no-deps``, checked for every module, template and demo file, installed with
``pip install --no-deps --target``, and then used from another directory with that install first
on sys.path: it loads every template through importlib.resources, exports a tiny model,
verifies it, injects a fault and C-simulates the faulty copy.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent('''
    import json, sys
    from pathlib import Path
    import numpy as np
    import fkhls
    site = Path(sys.argv[1]).resolve()
    assert Path(fkhls.__file__).resolve().is_relative_to(site), fkhls.__file__
    from fkhls.core import templates
    root = Path(str(templates.template_root())).resolve()
    for name in templates.template_names():
        templates._environment().get_template(name)  # loaded and compiled from the installed package data
    import tensorflow as tf
    from qkeras import QDense, quantized_bits
    q = dict(kernel_quantizer=quantized_bits(5, 0, alpha=1), bias_quantizer=quantized_bits(5, 0, alpha=1))
    inputs = tf.keras.Input((4,))
    model = tf.keras.Model(inputs, QDense(3, name="d", **q)(inputs))
    model.layers[1].set_weights([np.linspace(-0.9, 0.9, 12).reshape(4, 3).astype("float32"),
                                 np.array([0.25, -0.5, 0.125], "float32")])
    x = np.round(np.random.default_rng(1).uniform(-2, 2, (20, 4)) * 64) / 64
    project = fkhls.export(model, "p")
    faults = fkhls.FaultSet.from_regions(project, {"d": [fkhls.FaultyLayerBitRegion(0, 0, 1.0)]})
    faulty = project.inject(faults, "f")
    from fkhls.csim.cone import render_cone_harness
    from fkhls.csim.harness import render_harness
    from fkhls.csim.trace import render_trace_harness
    harnesses = [len(render(project.manifest)) for render in (render_harness, render_cone_harness, render_trace_harness)]
    print(json.dumps({
        "harnesses": harnesses,
        "templates_dir": str(root), "templates": templates.template_names(),
        "verify": project.verify(x).all_exact,
        "golden": project.csim(x, raw=True).tolist(), "faulty": faulty.csim(x, raw=True).tolist(),
        "generated": sorted(p.name for p in Path("f").iterdir() if p.name.startswith(("fkhls_", "build_csim"))),
    }))
''')


def _checkout_copy(destination: Path) -> Path:
    """Tracked and untracked (not ignored) files of the checkout, as they are on disk now."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    return destination


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout")
    base = tmp_path_factory.mktemp("wheel")
    source = _checkout_copy(base / "src")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(base / "dist"), str(source)], check=True, capture_output=True)
    (built,) = (base / "dist").glob("fkhls-*.whl")
    return built


def test_wheel_holds_every_module_template_and_data_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"fkhls/hls_templates/{p.name}" for p in (ROOT / "hls_templates").glob("*.j2")}
    expected |= {f"fkhls/data/{p.name}" for p in (ROOT / "fkhls" / "data").iterdir() if p.is_file()}
    expected |= {p.relative_to(ROOT).as_posix() for p in (ROOT / "fkhls").rglob("*.py")}
    assert {n.split("/")[1] for n in expected} >= {"hls_templates", "data", "api.py", "cli", "csim"}
    assert sorted(expected - names) == []


def test_installed_wheel_renders_and_runs_the_csim(wheel, tmp_path):
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
                   check=True, capture_output=True)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONPATH": str(site),
                                                                      "FKHLS_CXX_OPT": "-O0"}
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(site)], cwd=work, env=env, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert Path(report["templates_dir"]).is_relative_to(site.resolve())
    assert report["templates"] == sorted(p.name for p in (ROOT / "hls_templates").glob("*.j2"))
    assert report["verify"] is True
    assert {"build_csim.sh", "fkhls_csim.cpp", "fkhls_hls.tcl", "fkhls_hls_tb.cpp"} <= set(report["generated"])
    assert min(report["harnesses"]) > 1000  # fault, cone and trace harness sources rendered
    golden, faulty = report["golden"], report["faulty"]
    assert golden != faulty  # the sign bit of weight (0, 0) changes output 0 for nonzero x[:, 0]
