"""Run the public QKeras example models (fastmachinelearning/example-models) through export + verify.

Not a test: the models are not bundled. Reads them from a local git mirror of example-models
(``--mirror``, default ``/work/.mirror/fastmachinelearning+example-models/repo`` or
``$FKHLS_EXAMPLE_MODELS``; a bare or normal clone), takes every ``keras/qkeras_3layer*``,
``qkeras_mnist_dense*`` and ``qkeras_mnist_cnn*`` JSON + ``_weights.h5`` pair, and in a temporary
directory runs ``fkhls export`` and ``fkhls verify --json`` on seeded inputs on the input grid.
Prints one row per model: export ok / refused (first reason), verify exit code, per-layer verdicts.

    python scripts/try_models.py [--mirror DIR] [--samples 200] [--seed 0] [--softmax-implementation stable]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

PATTERNS = ("keras/qkeras_3layer", "keras/qkeras_mnist_dense", "keras/qkeras_mnist_cnn")
DEFAULT_MIRROR = "/work/.mirror/fastmachinelearning+example-models/repo"


def _git(mirror: Path, *args: str) -> bytes:
    # bare mirrors have no work tree: --git-dir works for both (a clone's .git, or the bare directory)
    git_dir = mirror / ".git" if (mirror / ".git").exists() else mirror
    return subprocess.run(["git", f"--git-dir={git_dir}", *args], check=True, capture_output=True).stdout


def model_pairs(mirror: Path) -> list[tuple[str, str, str]]:
    """(name, json path, weights path) of every example pair in the mirror's HEAD."""
    files = set(_git(mirror, "ls-tree", "-r", "--name-only", "HEAD").decode().split("\n"))
    pairs = []
    for path in sorted(files):
        if path.endswith(".json") and path.startswith(PATTERNS):
            weights = path[: -len(".json")] + "_weights.h5"
            if weights in files:
                pairs.append((Path(path).stem, path, weights))
    return pairs


def _fkhls(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fkhls.cli", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})


def _first_reason(text: str) -> str:
    for line in text.splitlines():
        if "error:" in line:
            reason = line.split("error:", 1)[1].strip()
            return reason if len(reason) < 400 else reason[:400] + " ..."
    return text.strip().splitlines()[-1] if text.strip() else ""


def _inputs(json_path: Path, samples: int, seed: int) -> np.ndarray:
    """Seeded inputs on ap_fixed<16,6>'s grid (2**-10) in the model's input shape, uniform in [-2, 2)."""
    config = json.loads(json_path.read_text())
    first = config["config"]["layers"][0]["config"]
    shape = first.get("batch_input_shape") or first.get("batch_shape")
    rng = np.random.default_rng(seed)
    return np.floor(rng.uniform(-2, 2, (samples, *shape[1:])) * 1024) / 1024


def run(mirror: Path, samples: int, seed: int, softmax_implementation: str) -> list[list[str]]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="fkhls-try-") as tmp:
        tmp = Path(tmp)
        for name, json_path, weights_path in model_pairs(mirror):
            arch, weights = tmp / f"{name}.json", tmp / f"{name}_weights.h5"
            arch.write_bytes(_git(mirror, "show", f"HEAD:{json_path}"))
            weights.write_bytes(_git(mirror, "show", f"HEAD:{weights_path}"))
            project = tmp / f"{name}_prj"
            exported = _fkhls("export", arch, "--weights", weights, "-o", project,
                              "--softmax-implementation", softmax_implementation)
            if exported.returncode != 0:
                rows.append([name, "refused", _first_reason(exported.stderr + exported.stdout), "", ""])
                continue
            x = tmp / f"{name}_x.npy"
            np.save(x, _inputs(arch, samples, seed))
            report = tmp / f"{name}_verify.json"
            verified = _fkhls("verify", project, "--inputs", x, "--json", report)
            verdicts = ""
            if report.exists():
                data = json.loads(report.read_text())
                verdicts = ", ".join(f"{v['name']}:{v['status']}" + (f"({v['max_lsb']:g}/{v['bound_lsb']:g} LSB)"
                                                                      if v["exactness"] == "approximate" and
                                                                      v["bound_lsb"] is not None else "")
                                     for v in data["layers"])
                agreement = data["output"]["argmax_agreement"]
                verdicts += f"; argmax agreement {100 * agreement:.1f}%" if agreement is not None else ""
            else:
                verdicts = _first_reason(verified.stderr + verified.stdout)
            rows.append([name, "ok", "", str(verified.returncode), verdicts])
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mirror", default=os.environ.get("FKHLS_EXAMPLE_MODELS", DEFAULT_MIRROR))
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--softmax-implementation", default="stable")
    args = parser.parse_args()
    mirror = Path(args.mirror)
    if not mirror.exists():
        print(f"skipped: no example-models mirror at {mirror} (fetch fastmachinelearning/example-models, or pass "
              "--mirror DIR)")
        return 0
    from tabulate import tabulate

    rows = run(mirror, args.samples, args.seed, args.softmax_implementation)
    print(f"inputs: {args.samples} seeded (seed {args.seed}) uniform in [-2, 2) on ap_fixed<16,6>'s grid; "
          f"softmax implementation {args.softmax_implementation}")
    print(tabulate(rows, headers=["model", "export", "refused because", "verify exit", "per-layer verdicts"],
                   tablefmt="github"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
