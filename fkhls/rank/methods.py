"""One ranking per method, over every weight bit of a project (``fkhls rank``).

Methods:

* ``gradient``, ``taylor``, ``hessian`` -- FKeras's parameter scores (``rank.sensitivity``) on the
  project's QKeras model, turned into a bit order by FKeras's convention (``rank.bitorder``);
* ``msb`` -- bit position first: every MSB (model-bit order), then every MSB-1, ...;
* ``random`` -- a permutation drawn by ``numpy.random.default_rng(seed)``;
* ``exhaustive`` -- the ground truth (``rank.truth``) sorted by damage, then output words
  changed, then the largest output change, then model bit: the oracle order.

The bit list is the project's (``spec_from_manifest`` -> every tensor the address map knows), so
an array added to the manifest later is ranked too. Every choice (seed, loss, inputs) is
recorded in ``Ranking.info`` and so in the sidecar JSON.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from fkhls import __version__
from fkhls.campaign.runner import load_labels
from fkhls.core.files import load_array, sha256_file
from fkhls.core.errors import FkhlsError
from fkhls.rank.bitorder import BIT_ORDERS, BitSpace, bit_order
from fkhls.rank.ranking import Ranking

__all__ = ["METHODS", "TF_METHODS", "HessianOptions", "rank_project", "ranking_from_truth", "load_labels"]

METHODS = ("hessian", "gradient", "taylor", "msb", "random", "exhaustive")
TF_METHODS = ("hessian", "gradient", "taylor")


@dataclass(frozen=True)
class HessianOptions:
    """Bounds of the Hessian computation: eigenpairs, products per pair, tolerance, samples, batch."""

    top_k: int = 3
    max_iter: int = 20
    tolerance: float = 1e-3
    max_samples: int = 256  # the first N inputs
    batch_size: int = 256






def ranking_from_truth(truth, info: dict | None = None) -> Ranking:
    """The oracle order of a truth: damage, output words changed, largest change (all decreasing), model bit."""
    space = truth.space
    order = np.lexsort((np.arange(space.n_bits), -truth.worst_lsb, -truth.secondary, -truth.damage))
    tensor, lbi = space.all_bits()
    return Ranking("exhaustive", space, tensor[order], lbi[order], truth.damage[order].astype(np.float64), None,
                   {"criterion": truth.criterion, "truth": truth.source, **(info or {})})


def _tf_model(manifest, space: BitSpace):
    from fkhls.emulate.emulator import golden_weights
    from fkhls.model.spec import describe_model, load_keras_model

    model = load_keras_model(manifest.model_path)
    spec = describe_model(model, manifest.input_type["cpp"], **manifest.describe_options)
    if BitSpace.of(spec) != space:
        raise FkhlsError(f"the model copy {str(manifest.model_path)!r} does not match the project's tensors; "
                         "re-export the project")
    return model, spec, golden_weights(model, spec)


def rank_project(project_dir: str | Path, method: str, *, inputs: str | Path | None = None,
                 labels: str | Path | None = None, seed: int = 0, campaign: str | Path | None = None,
                 criterion: str = "top1", convention: str = "msb-groups",
                 hessian: HessianOptions = HessianOptions()) -> Ranking:
    """Rank every weight bit of the project by ``method`` (see the module docstring)."""
    from fkhls.campaign.runner import project_hash
    from fkhls.faults.addressing import spec_from_manifest
    from fkhls.project.manifest import load_manifest

    if method not in METHODS:
        raise FkhlsError(f"method {method!r} is not valid; valid methods: {list(METHODS)}")
    if convention not in BIT_ORDERS:
        raise FkhlsError(f"bit order {convention!r} is not valid; valid bit orders: {list(BIT_ORDERS)}")
    if isinstance(seed, bool) or int(seed) < 0:
        raise FkhlsError(f"seed {seed!r} is not valid; it must be an integer >= 0")
    if campaign is not None and method != "exhaustive":
        raise FkhlsError(f"--campaign is for method 'exhaustive' only, not {method!r}")
    project_dir = Path(project_dir)
    manifest = load_manifest(project_dir)
    space = BitSpace.of(spec_from_manifest(manifest))
    info: dict = {"method": method, "seed": int(seed), "project": str(project_dir.resolve()),
                  "project_hash": project_hash(project_dir), "fkhls_version": __version__}
    x, x_raw, y = _read_data(manifest, inputs, labels, info)
    if method == "exhaustive":
        return _exhaustive(manifest, project_dir, space, x_raw, campaign, criterion, info)
    if method == "random":
        tensor, lbi = space.all_bits()
        order = np.random.default_rng(int(seed)).permutation(space.n_bits)
        info["order"] = f"numpy.random.default_rng({int(seed)}).permutation of the model bits"
        return Ranking(method, space, tensor[order], lbi[order], np.zeros(space.n_bits), None, info)
    if method == "msb":
        tensor, lbi, _, _ = bit_order(space, np.zeros(space.n_params), "msb-groups")
        info["order"] = "bit position from the MSB first, model-bit order inside a position"
        return Ranking(method, space, tensor, lbi, np.zeros(space.n_bits), None, info)
    if x_raw is None:
        raise FkhlsError(f"method {method!r} needs --inputs")
    return _fkeras(manifest, space, method, x, x_raw, y, int(seed), convention, hessian, info)


def _read_data(manifest, inputs, labels, info: dict):
    """Inputs (checked on the input type's grid), their raw words and labels; hashes go into ``info``."""
    from fkhls.csim.build import input_words

    x = x_raw = y = None
    if inputs is not None:
        inputs = Path(inputs)
        x = load_array(inputs, "inputs")
        x_raw = input_words(manifest, x, what=f"inputs {inputs}")
        info.update(inputs=str(inputs.resolve()), inputs_hash=sha256_file(inputs), n_samples=int(len(x_raw)))
    if labels is not None:
        if x_raw is None:
            raise FkhlsError("--labels needs --inputs")
        y = load_labels(Path(labels), len(x_raw))
        n_out = int(np.prod(manifest.output_shape))
        if y.max(initial=0) >= n_out or y.min(initial=0) < 0:
            raise FkhlsError(f"labels {str(labels)!r} hold classes {int(y.min())}..{int(y.max())}; the model has "
                             f"{n_out} outputs (valid classes 0..{n_out - 1})")
        info.update(labels=str(Path(labels).resolve()), labels_hash=sha256_file(Path(labels)))
    return x, x_raw, y


def _exhaustive(manifest, project_dir: Path, space: BitSpace, x_raw, campaign, criterion: str, info: dict) -> Ranking:
    """The oracle order from a finished campaign, or from the exact TF engine on the inputs."""
    from fkhls.rank.truth import CRITERIA, check_campaign_project, truth_from_campaign, truth_from_engine

    if campaign is not None:
        identity = check_campaign_project(Path(campaign), project_dir)
        if x_raw is not None and identity.get("inputs_hash") != info["inputs_hash"]:
            raise FkhlsError(f"inputs {info['inputs']!r} differ from the inputs of campaign {str(campaign)!r}; "
                             "give the campaign's inputs or leave --inputs out")
        info.update(inputs=identity.get("inputs"), inputs_hash=identity.get("inputs_hash"),
                    n_samples=identity.get("n_samples"))
        truth = truth_from_campaign(campaign, space, criterion)
    else:
        if x_raw is None:
            raise FkhlsError("method 'exhaustive' needs --inputs (or --campaign DIR of a finished campaign)")
        _, spec, weights = _tf_model(manifest, space)
        truth = truth_from_engine(spec, weights, x_raw, space, criterion, {"inputs_hash": info["inputs_hash"]})
    info["damage"] = f"{truth.criterion}: {CRITERIA[truth.criterion]}"
    return ranking_from_truth(truth, info)


def _fkeras(manifest, space: BitSpace, method: str, x, x_raw, y, seed: int, convention: str,
            hessian: HessianOptions, info: dict) -> Ranking:
    """FKeras's gradient / Taylor / Hessian parameter scores, turned into a bit order."""
    from fkhls.rank import sensitivity

    model, spec, weights = _tf_model(manifest, space)
    if y is None:
        from fkhls.emulate.emulator import forward_raw

        golden = forward_raw(spec, weights, x_raw.reshape(len(x_raw), *spec.input_shape))
        y = golden.reshape(len(x_raw), -1).argmax(axis=1)
        info["loss"] = sensitivity.LOSS_DESCRIPTION["top1"]
    else:
        info["loss"] = sensitivity.LOSS_DESCRIPTION["labels"]
    xf = x.reshape(len(x_raw), *spec.input_shape).astype(np.float32)
    info["bit_order"] = convention
    if method == "gradient":
        scores = sensitivity.gradient_scores(model, space, xf, y)
    elif method == "taylor":
        scores = sensitivity.taylor_scores(model, space, xf, y)
    else:
        n = min(len(xf), hessian.max_samples)
        result = sensitivity.hessian_eigen(model, space, xf[:n], y[:n], k=hessian.top_k, max_iter=hessian.max_iter,
                                           tolerance=hessian.tolerance, seed=seed, batch_size=hessian.batch_size)
        scores = sensitivity.hessian_scores(result, sensitivity.weight_values(model, space))
        info["hessian"] = {**asdict(hessian), "samples_used": n, "eigenvalues": list(result.eigenvalues),
                           "iterations": list(result.iterations), "converged": list(result.converged),
                           "start_vectors": f"numpy.random.default_rng({seed}).uniform"}
    tensor, lbi, bit_scores, param_scores = bit_order(space, scores, convention)
    return Ranking(method, space, tensor, lbi, bit_scores, param_scores, info)
