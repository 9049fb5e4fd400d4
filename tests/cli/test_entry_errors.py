"""Issue 14.4: every command's errors through the real entry point (``python -m fkhls.cli``).

The promise is the CLI's, so it is tested there: exit 1 with exactly one stderr line
``fkhls: error: ...`` naming the thing and the valid range (exit 2 and click's usage error for a
bad command line), and never a traceback. Cases are cheap: most fail before TensorFlow loads.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.entry import assert_error, run_fkhls

DATA = Path(__file__).resolve().parents[2] / "fkhls" / "data"
MODEL = DATA / "demo_model.h5"


@pytest.fixture(scope="module")
def files(demo_project_session, tmp_path_factory):
    """The demo project, a fault file, inputs (good, off-grid, wrong shape) and outputs that already exist."""
    base = tmp_path_factory.mktemp("entry")
    (base / "faults.json").write_text(json.dumps({"faults": [{"layer": "fc1", "bits": [0]}]}))
    (base / "nolayer.json").write_text(json.dumps({"faults": [{"layer": "fc9", "bits": [0]}]}))
    x = np.load(DATA / "demo_inputs.npy")[:4]
    np.save(base / "x.npy", x)
    off = x.copy()
    off[3, 7] += 2.0**-12
    np.save(base / "off.npy", off)
    np.save(base / "narrow.npy", x[:, :15])
    taken = base / "taken"
    taken.mkdir()
    (taken / "user.txt").write_text("mine")
    (base / "taken.csv").write_text("mine")
    (base / "taken.npy").write_bytes(b"mine")
    (base / "empty").mkdir()
    return {"project": demo_project_session.project_dir, "base": base}


def _case(files, *args):
    """Substitute {project} and {base} in the arguments."""
    return [str(a).format(project=files["project"], base=files["base"]) for a in args]


# (command line, exit code, texts the error line must contain)
CASES = {
    "export-existing-output": (["export", MODEL, "-o", "{base}/taken"], 1, ["{base}/taken", "--force"]),
    "export-bad-input-type": (["export", MODEL, "-o", "{base}/new", "--input-type", "float"], 1,
                              ["cannot parse fixed-point type 'float'", "ap_fixed<W,I[,Q,O]>"]),
    "export-bad-reuse": (["export", MODEL, "-o", "{base}/new", "--reuse-factor", "0"], 2, ["--reuse-factor"]),
    "verify-not-a-project": (["verify", "{base}/empty", "--inputs", "{base}/x.npy"], 1, ["not an fkhls project"]),
    "verify-off-grid": (["verify", "{project}", "--inputs", "{base}/off.npy"], 1, ["inputs[(3, 7)]", "ap_fixed<16,6>"]),
    "faultmap-existing-output": (["faultmap", "{project}", "--faults", "{base}/faults.json", "-o", "{base}/taken.csv"],
                                 1, ["taken.csv", "--force"]),
    "faultmap-unknown-layer": (["faultmap", "{project}", "--faults", "{base}/nolayer.json", "-o", "{base}/m.csv"], 1,
                               ["fc9"]),
    "locate-out-of-range": (["locate", "{project}", "--array", "w2", "--index", "5000", "--bit", "0"], 1,
                            ["5000", "0..1023"]),
    "locate-no-coordinates": (["locate", "{project}"], 2, ["--array"]),
    "inject-existing-output": (["inject", "{project}", "--faults", "{base}/faults.json", "-o", "{base}/taken"], 1,
                               ["--force"]),
    "csim-wrong-shape": (["csim", "{project}", "--inputs", "{base}/narrow.npy", "-o", "{base}/y.npy"], 1,
                         ["(4, 15)", "(N, 16)"]),
    "rank-existing-output": (["rank", "{project}", "--method", "msb", "--inputs", "{base}/x.npy", "-o",
                              "{base}/taken.csv"], 1, ["taken.csv", "--force"]),
    "rank-eval-no-campaign": (["rank-eval", "{project}", "--rankings", "{base}/taken.csv", "--truth", "{base}/empty",
                               "--report", "{base}/re"], 1, ["holds no campaign", "campaign.json"]),
    "harden-bad-ranking": (["harden", "{project}", "--ranking", "{base}/taken.csv", "--budget", "1", "-o",
                            "{base}/h"], 1, ["taken.csv", "layer"]),
    "harden-verify-not-hardened": (["harden-verify", "{project}", "--inputs", "{base}/x.npy"], 1,
                                   ["not a hardened project"]),
    "cache-prune-negative-age": (["cache", "prune", "--older-than", "-1"], 2, ["--older-than"]),
    "csim-existing-output": (["csim", "{project}", "--inputs", "{base}/x.npy", "-o", "{base}/taken.npy"], 1,
                             ["taken.npy", "--force"]),
    "crosscheck-existing-report": (["crosscheck", "{project}", "--faults", "{base}/faults.json", "--inputs",
                                    "{base}/x.npy", "--report", "{base}/taken"], 1, ["--force"]),
    "campaign-unknown-layer": (["campaign", "{project}", "--inputs", "{base}/x.npy", "--engine", "tf", "--exhaustive",
                                "--layers", "nope", "-o", "{base}/c1"], 1, ["nope"]),
    "campaign-both-modes": (["campaign", "{project}", "--inputs", "{base}/x.npy", "--exhaustive", "--ber", "0.1",
                             "-o", "{base}/c2"], 2, ["exactly one of --exhaustive or --ber"]),
    "campaign-report-no-campaign": (["campaign-report", "{base}/empty"], 1, ["holds no campaign", "campaign.json"]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_errors_are_one_line_through_the_entry_point(files, name):
    args, code, needles = CASES[name]
    proc = run_fkhls(*_case(files, *args))
    assert_error(proc, *_case(files, *needles), code=code)


def test_every_command_has_an_error_case():
    from fkhls.cli import main

    covered = {args[0] for args, _, _ in CASES.values()}
    assert covered == set(main.commands), set(main.commands) ^ covered


def test_user_files_survive_the_refusals(files):
    base = files["base"]
    assert (base / "taken" / "user.txt").read_text() == "mine" and sorted(p.name for p in (base / "taken").iterdir()) \
        == ["user.txt"]
    assert (base / "taken.csv").read_text() == "mine" and (base / "taken.npy").read_bytes() == b"mine"
    assert not (base / "new").exists() and not (base / "y.npy").exists()
