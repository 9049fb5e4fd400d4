"""Try fkhls as a new user would, on QKeras models its tests have not seen (issue 10's bar).

Not a test: builds small seeded models (weights drawn from a seeded rng, no training) -- the six of
issue 10's first paragraph plus rebuilds of the QKeras models of hls4ml 1.3.0's own
``test/pytest/test_qkeras.py`` (shrunk where its inputs are large) -- and, for each, in a temporary
directory, runs the real CLI (``python -m fkhls.cli``): save (.h5; ``mnist_cnn`` also as the JSON +
weights pair), ``export``, ``verify --json``, ``faultmap``, a ``campaign --engine both`` over one layer
(exhaustive when it has at most ``--max-exhaustive`` bits, else statistical) and ``crosscheck`` on a small
fault file (a kernel bit, a bias bit, and a new-array bit: a batch-norm scale, an ApplyAlpha scale, a
depthwise/pointwise kernel, where the model has one). Prints one row per model.

    python scripts/try_unseen_models.py [--only a,b] [--samples 100] [--campaign-samples 8] [--seed 0] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

STANDARD = ("kernel", "bias")


def _seeded_weights(model, seed: int) -> None:
    """Non-trivial weights from a seeded rng: kernels/biases uniform in [-1, 1), batch-norm variances and
    gammas positive; integer bookkeeping variables (QConv2DBatchnorm's ``iteration``) kept."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        values = []
        for var, value in zip(layer.weights, layer.get_weights()):
            name = var.name.split("/")[-1]
            if not np.issubdtype(value.dtype, np.floating):
                values.append(value)
            elif "variance" in name:
                values.append(rng.uniform(0.5, 2.0, value.shape).astype(value.dtype))
            elif "gamma" in name:
                values.append(rng.uniform(0.5, 1.5, value.shape).astype(value.dtype))
            else:
                values.append(rng.uniform(-1.0, 1.0, value.shape).astype(value.dtype))
        if values:
            layer.set_weights(values)


# ----------------------------------------------------------------------------- the models
# Each builder returns a compiled-free Keras model; imports stay inside so --help is fast.

def mnist_cnn():
    import tensorflow as tf
    from qkeras import QActivation, QConv2D, QDense
    from qkeras.quantizers import quantized_bits, quantized_relu

    x = tf.keras.Input((8, 8, 1), name="image")
    h = QConv2D(4, 3, kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1),
                name="conv1")(x)
    h = tf.keras.layers.BatchNormalization(name="bn1")(h)
    h = QActivation(quantized_relu(6, 2), name="relu1")(h)
    h = tf.keras.layers.MaxPooling2D(2, name="pool1")(h)
    h = tf.keras.layers.Flatten(name="flat")(h)
    h = QDense(5, kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1),
               name="fc")(h)
    y = tf.keras.layers.Activation("softmax", name="softmax")(h)
    return tf.keras.Model(x, y, name="mnist_cnn")


def residual_concat():
    import tensorflow as tf
    from qkeras import QActivation, QDense
    from qkeras.quantizers import quantized_bits, quantized_relu

    q = dict(kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1))
    x = tf.keras.Input((12,), name="features")
    a = QDense(8, name="stem", **q)(x)
    a = QActivation(quantized_relu(6, 2), name="stem_relu")(a)
    b = QDense(8, name="block", **q)(a)
    b = QActivation(quantized_relu(6, 2), name="block_relu")(b)
    s = tf.keras.layers.Add(name="residual")([a, b])
    c = tf.keras.layers.Concatenate(name="concat")([s, a])
    y = QDense(4, name="head", **q)(c)
    return tf.keras.Model(x, y, name="residual_concat")


def dense_auto_po2():
    import tensorflow as tf
    from qkeras import QActivation, QDense
    from qkeras.quantizers import quantized_bits, quantized_relu

    return tf.keras.Sequential([
        tf.keras.Input((10,), name="x"),
        QDense(8, kernel_quantizer=quantized_bits(6, 0, alpha="auto_po2"), bias_quantizer=quantized_bits(6, 2),
               name="fc1"),
        QActivation(quantized_relu(6, 2), name="relu1"),
        QDense(3, kernel_quantizer=quantized_bits(6, 0, alpha="auto_po2"), bias_quantizer=quantized_bits(6, 2),
               name="fc2"),
    ], name="dense_auto_po2")


def conv2d_batchnorm():
    import tensorflow as tf
    from qkeras import QConv2DBatchnorm, QDense
    from qkeras.quantizers import quantized_bits, quantized_relu

    return tf.keras.Sequential([
        tf.keras.Input((6, 6, 2), name="x"),
        QConv2DBatchnorm(3, 3, kernel_quantizer=quantized_bits(8, 0, alpha=1),
                         bias_quantizer=quantized_bits(8, 2, alpha=1), activation=quantized_relu(8, 2),
                         name="convbn"),
        tf.keras.layers.Flatten(name="flat"),
        QDense(3, kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1),
               name="fc"),
    ], name="conv2d_batchnorm")


def depthwise_separable():
    import tensorflow as tf
    from qkeras import QActivation, QDense, QDepthwiseConv2D, QSeparableConv2D
    from qkeras.quantizers import quantized_bits, quantized_relu

    q6 = quantized_bits(6, 0, alpha=1)
    return tf.keras.Sequential([
        tf.keras.Input((8, 8, 3), name="x"),
        QDepthwiseConv2D(3, depthwise_quantizer=q6, bias_quantizer=q6, name="dw"),
        QActivation(quantized_relu(6, 2), name="dw_relu"),
        QSeparableConv2D(4, 3, depthwise_quantizer=q6, pointwise_quantizer=q6, bias_quantizer=q6, name="sep"),
        QActivation(quantized_relu(6, 2), name="sep_relu"),
        tf.keras.layers.GlobalAveragePooling2D(name="gap"),
        QDense(3, kernel_quantizer=q6, bias_quantizer=q6, name="fc"),
    ], name="depthwise_separable")


def conv1d_avgpool():
    import tensorflow as tf
    from qkeras import QActivation, QConv1D, QDense
    from qkeras.quantizers import quantized_bits, quantized_relu

    q6 = quantized_bits(6, 0, alpha=1)
    return tf.keras.Sequential([
        tf.keras.Input((16, 2), name="x"),
        QConv1D(4, 3, kernel_quantizer=q6, bias_quantizer=q6, name="conv"),
        QActivation(quantized_relu(6, 2), name="relu"),
        tf.keras.layers.AveragePooling1D(2, name="avg"),
        tf.keras.layers.Dropout(0.25, name="drop"),
        tf.keras.layers.Reshape((28,), name="reshape"),
        QDense(3, kernel_quantizer=q6, bias_quantizer=q6, name="fc"),
    ], name="conv1d_avgpool")


# --- hls4ml 1.3.0 test/pytest/test_qkeras.py, rebuilt (architecture and quantizers; weights seeded here)

def hls4ml_single_dense(alpha):
    def build():
        import tensorflow as tf
        from qkeras import QActivation, QDense
        from qkeras.quantizers import quantized_bits, quantized_relu

        return tf.keras.Sequential([
            tf.keras.Input((16,)),
            QDense(16, name="fc1", kernel_quantizer=quantized_bits(4, 0, alpha=alpha),
                   bias_quantizer=quantized_bits(4, 0, alpha=1)),
            QActivation(activation=quantized_relu(4, 0), name="relu1"),
        ])
    return build


def hls4ml_btnn(kernel, activation, batchnorm):
    def build():
        import tensorflow as tf
        from qkeras import QActivation, QDense
        from qkeras.quantizers import quantized_bits

        layers = [tf.keras.Input((10,)),
                  QDense(10, kernel_quantizer=kernel(), bias_quantizer=quantized_bits(5, 2), name="dense")]
        if batchnorm:
            layers.append(tf.keras.layers.BatchNormalization(name="bn"))
        layers.append(QActivation(activation=activation()))
        return tf.keras.Sequential(layers)
    return build


def hls4ml_quantizer(make):
    def build():
        import tensorflow as tf
        from qkeras import QActivation

        return tf.keras.Sequential([tf.keras.Input((1,)), QActivation(activation=make(), name="quantizer")])
    return build


def hls4ml_qactivation_kwarg(weight, activation):
    def build():
        import tensorflow as tf
        from qkeras import QDense

        x = tf.keras.Input((10,))
        y = QDense(10, activation=activation, name="qdense", kernel_quantizer=weight, bias_quantizer=weight)(x)
        return tf.keras.Model(x, y)
    return build


def hls4ml_qconv2dbn():
    import tensorflow as tf
    from qkeras import QConv2DBatchnorm

    return tf.keras.Sequential([tf.keras.Input((8, 8, 1)), QConv2DBatchnorm(
        4, kernel_size=(3, 3), kernel_quantizer="quantized_bits(8, 0, alpha=1)",
        bias_quantizer="quantized_bits(8, 0, alpha=1)", activation="quantized_relu(8, 0)", name="qconv2dbn")])


def hls4ml_qdepthwise():
    import tensorflow as tf
    from qkeras import QDepthwiseConv2D

    # hls4ml: (32, 32, 3) inputs; (10, 10, 3) here so an exhaustive campaign stays small
    return tf.keras.Sequential([tf.keras.Input((10, 10, 3)), QDepthwiseConv2D(
        kernel_size=(3, 3), depthwise_quantizer="quantized_bits(6, 0, alpha=1)",
        bias_quantizer="quantized_bits(4, 0, alpha=1)", activation="quantized_relu(3, 0)", name="qdw")])


def hls4ml_po2():
    import tensorflow as tf
    from qkeras import QDense
    from qkeras.quantizers import quantized_po2

    return tf.keras.Sequential([tf.keras.Input((26,)),
                                QDense(6, name="dense", kernel_quantizer=quantized_po2(18, max_value=2**20))])


def hls4ml_qlstm():
    import tensorflow as tf
    from qkeras import QLSTM

    q8 = "quantized_bits(8, 0, alpha=1)"
    return tf.keras.Sequential([tf.keras.Input((5, 2)), QLSTM(
        4, kernel_quantizer=q8, recurrent_quantizer=q8, bias_quantizer=q8, state_quantizer=q8,
        activation="tanh", recurrent_activation="sigmoid")])


def hls4ml_separable(rank):
    def build():
        import tensorflow as tf
        from qkeras import QSeparableConv1D, QSeparableConv2D
        from qkeras.quantizers import quantized_bits

        q = quantized_bits(8, 3, alpha=1)
        # hls4ml: (13, 20) and (13, 21, 20) inputs, 5 filters; fewer channels here
        if rank == 1:
            x = tf.keras.Input((13, 6), name="input_layer")
            y = QSeparableConv1D(5, 3, depthwise_quantizer=q, pointwise_quantizer=q, bias_quantizer=q,
                                 name="qsepconv_1")(x)
        else:
            x = tf.keras.Input((7, 8, 4), name="input_layer")
            y = QSeparableConv2D(5, 3, depthwise_quantizer=q, pointwise_quantizer=q, bias_quantizer=q,
                                 name="qsepconv_1")(x)
        return tf.keras.Model(x, y)
    return build


def _q(name, *args, **kwargs):
    def make():
        import qkeras.quantizers as quantizers

        return getattr(quantizers, name)(*args, **kwargs)
    return make


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable
    export_args: tuple[str, ...] = ()
    json_pair: bool = False  # also save the JSON + weights pair and export from it
    keep_weights: bool = False  # keep the builder's own weights (hls4ml's initializers)
    notes: str = ""
    extra: dict = field(default_factory=dict)


CASES = [
    Case("mnist_cnn", mnist_cnn, json_pair=True),
    Case("residual_concat", residual_concat),
    Case("dense_auto_po2", dense_auto_po2),
    Case("conv2d_batchnorm", conv2d_batchnorm),
    Case("depthwise_separable", depthwise_separable),
    Case("conv1d_avgpool", conv1d_avgpool),
    Case("hls4ml_single_dense_4_1", hls4ml_single_dense(1)),
    Case("hls4ml_single_dense_4_auto_po2", hls4ml_single_dense("auto_po2")),
    Case("hls4ml_single_dense_4_1_stream", hls4ml_single_dense(1), ("--io-type", "io_stream")),
    Case("hls4ml_btnn_1", hls4ml_btnn(_q("ternary", alpha=1), lambda: "binary_tanh", False)),
    Case("hls4ml_btnn_3", hls4ml_btnn(_q("ternary", alpha="auto"), _q("binary"), True)),
    Case("hls4ml_btnn_7", hls4ml_btnn(_q("binary"), _q("binary"), False)),
    Case("hls4ml_quantizer_tanh8", hls4ml_quantizer(_q("quantized_tanh", 8))),
    Case("hls4ml_quantizer_sigmoid5", hls4ml_quantizer(_q("quantized_sigmoid", 5))),
    Case("hls4ml_quantizer_real_sigmoid7", hls4ml_quantizer(_q("quantized_sigmoid", 7, use_real_sigmoid=True))),
    Case("hls4ml_quantizer_bits_8_4", hls4ml_quantizer(_q("quantized_bits", 8, 4))),
    Case("hls4ml_quantizer_relu_10_5", hls4ml_quantizer(_q("quantized_relu", 10, 5))),
    Case("hls4ml_qact_kwarg_relu4", hls4ml_qactivation_kwarg("quantized_bits(4, 0, alpha=1)", "quantized_relu(4, 0)")),
    Case("hls4ml_qact_kwarg_ternary", hls4ml_qactivation_kwarg("ternary", "ternary")),
    Case("hls4ml_qconv2dbn", hls4ml_qconv2dbn),
    Case("hls4ml_qdepthwise_stream", hls4ml_qdepthwise, ("--io-type", "io_stream")),
    Case("hls4ml_qseparable1d_stream", hls4ml_separable(1), ("--io-type", "io_stream")),
    Case("hls4ml_qseparable2d_stream", hls4ml_separable(2), ("--io-type", "io_stream")),
    Case("hls4ml_quantised_po2", hls4ml_po2),
    Case("hls4ml_qlstm", hls4ml_qlstm),
]


# ----------------------------------------------------------------------------- running the CLI

def _fkhls(*args, timeout: float = 1800) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fkhls.cli", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, timeout=timeout)


def _reason(result: subprocess.CompletedProcess, limit: int = 300) -> str:
    text = (result.stderr + result.stdout).strip()
    for line in text.splitlines():
        if "error:" in line.lower():
            line = line.split("rror:", 1)[1].strip()
            return line if len(line) <= limit else line[:limit] + " ..."
    last = text.splitlines()[-1] if text else ""
    return last[:limit]


def _inputs(shape, n: int, seed: int) -> np.ndarray:
    """Seeded inputs on ap_fixed<16,6>'s grid (2**-10), uniform in [-2, 2)."""
    rng = np.random.default_rng(seed)
    return (np.floor(rng.uniform(-2, 2, (n, *shape)) * 1024) / 1024).astype(np.float32)


def _is_new_array(layer: dict, array: dict) -> bool:
    return array["tensor"] not in STANDARD or layer["kind"] in ("batchnorm", "alpha", "apply_alpha")


def _arrays(manifest: dict) -> list[tuple[dict, dict]]:
    return [(layer, layer[slot]) for layer in manifest["layers"] for slot in ("kernel", "bias") if layer.get(slot)]


def _owner(layer: dict, array: dict) -> str:
    """The layer name fault descriptors and --layers use for an array (README: a separable conv's arrays sit under
    its Keras layer, an ApplyAlpha's under its step)."""
    return array.get("owner") or layer["keras_name"]


def _kernel_bias_faults(kernel_pool: list, bias_pool: list) -> list[dict]:
    """The sign and an LSB of the first kernel in ``kernel_pool``, bit 1 of the last bias in ``bias_pool``."""
    faults = []
    kernels = [(layer, a) for layer, a in kernel_pool if a["tensor"] == "kernel"]
    if kernels:
        layer, a = kernels[0]
        faults.append({"name": "kernel sign", "layer": _owner(layer, a), "tensor": "kernel", "bits": [0]})
        faults.append({"name": "kernel lsb", "layer": _owner(layer, a), "tensor": "kernel",
                       "bits": [a["type"]["width"] * min(3, a["size"] - 1) + a["type"]["width"] - 1]})
    biases = [(layer, a) for layer, a in bias_pool if a["tensor"] == "bias"]
    if biases:
        layer, a = biases[-1]
        faults.append({"name": "bias bit 1", "layer": _owner(layer, a), "tensor": "bias", "bits": [1]})
    return faults


def _fault_file(manifest: dict) -> dict:
    """A kernel MSB, a bias bit and, where the model has one, a bit of a new (non Keras kernel/bias) array."""
    arrays = _arrays(manifest)
    faults = _kernel_bias_faults([(layer, a) for layer, a in arrays if not _is_new_array(layer, a)], arrays)
    for layer, a in arrays:
        if _is_new_array(layer, a):
            faults.append({"name": f"new array {a['array']} ({_owner(layer, a)}.{a['tensor']})", "array": a["array"],
                           "bits": [1, a["type"]["width"] * (a["size"] // 2) + a["type"]["width"] // 2]})
    return {"seed": 0, "faults": faults}


def _keras_variable_faults(manifest: dict) -> list[dict]:
    """Kernel and bias bits of layers whose arrays are the Keras variables themselves (FKeras's TF way can flip
    only those: not a QConv2DBatchnorm's folded arrays, an auto_po2 kernel divided by its scale, a BN's arrays)."""
    names = {layer["name"] for layer in manifest["layers"]}
    plain = [(layer, a) for layer, a in _arrays(manifest)
             if a["tensor"] in STANDARD and not _is_new_array(layer, a)
             and not (layer.get("hls_class") or "").endswith("Batchnorm") and f"{layer['name']}_alpha" not in names]
    return _kernel_bias_faults(plain, plain)


def _campaign_target(manifest: dict) -> tuple[str, int] | None:
    """The layer to campaign over: the smallest holding a new array, else the smallest weighted layer."""
    bits: dict[str, int] = {}
    new: set[str] = set()
    for layer, a in _arrays(manifest):
        owner = _owner(layer, a)
        bits[owner] = bits.get(owner, 0) + a["size"] * a["type"]["width"]
        if _is_new_array(layer, a):
            new.add(owner)
    if not bits:
        return None
    pool = [name for name in bits if name in new] or list(bits)
    name = min(pool, key=lambda n: bits[n])
    return name, bits[name]


def _verify_summary(report: dict) -> str:
    bad, approx = [], []
    for v in report["layers"]:
        status = v["status"]
        if status in ("differs", "exceeds bound", "no bound declared"):
            bad.append(f"{v['name']}:{status}({v['max_lsb']:g} LSB)")
        elif v["exactness"] == "approximate":
            bound = v.get("bound_lsb")
            approx.append(f"{v['name']}:{v['max_lsb']:g}/{bound:g}" if bound is not None else v["name"])
    text = "failing " + (", ".join(bad) if bad else "none")
    if approx:
        text += "; approx within bound " + ", ".join(approx)
    agreement = report.get("output", {}).get("argmax_agreement")
    if agreement is not None:
        text += f"; argmax {100 * agreement:.0f}%"
    return text


def run_case(case: Case, tmp: Path, samples: int, campaign_samples: int, seed: int, max_exhaustive: int,
             log) -> list[str]:
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    model = case.build()
    if not case.keep_weights:
        _seeded_weights(model, seed)
    work = tmp / case.name
    work.mkdir()
    model_path = work / "model.h5"
    model.save(model_path)
    source = [model_path]
    if case.json_pair:
        (work / "model.json").write_text(model.to_json())
        model.save_weights(work / "model_weights.h5")
        source = [work / "model.json", "--weights", work / "model_weights.h5"]
    x = work / "x.npy"
    np.save(x, _inputs(model.input_shape[1:], samples, seed))
    xc = work / "xc.npy"
    np.save(xc, _inputs(model.input_shape[1:], campaign_samples, seed + 1))

    project = work / "prj"
    t0 = time.time()
    exported = _fkhls("export", *source, "-o", project, *case.export_args)
    log(f"{case.name}: export rc={exported.returncode} ({time.time() - t0:.0f} s)")
    if exported.returncode != 0:
        return [case.name, f"refused: {_reason(exported)}", "", "", "", "", ""]
    manifest = json.loads((project / "fkhls.json").read_text())
    export_text = "ok" + (" (json+weights)" if case.json_pair else "")

    verified = _fkhls("verify", project, "--inputs", x, "--json", work / "verify.json")
    if (work / "verify.json").exists():
        verify_text = f"exit {verified.returncode}: " + _verify_summary(json.loads((work / "verify.json").read_text()))
    else:
        verify_text = f"exit {verified.returncode}: {_reason(verified)}"
    log(f"{case.name}: verify {verify_text}")

    faults = _fault_file(manifest)
    if not faults["faults"]:
        return [case.name, export_text, verify_text, "no weight arrays", "", "", ""]
    fault_path = work / "faults.json"
    fault_path.write_text(json.dumps(faults))
    mapped = _fkhls("faultmap", project, "--faults", fault_path, "-o", work / "map.csv")
    map_text = (f"{sum(1 for _ in open(work / 'map.csv')) - 1} bits mapped" if mapped.returncode == 0
                else f"exit {mapped.returncode}: {_reason(mapped)}")
    log(f"{case.name}: faultmap {map_text}")

    layer, n_bits = _campaign_target(manifest)
    kind = ["--exhaustive"] if n_bits <= max_exhaustive else ["--confidence", "0.9", "--margin", "0.05",
                                                              "--seed", str(seed)]
    t0 = time.time()
    results = work / "campaign"
    ran = _fkhls("campaign", project, "--inputs", xc, "-o", results, "--engine", "both", "--layers", layer,
                 "--quiet", *kind)
    summary_path = results / "summary.json"
    if summary_path.exists():
        s = json.loads(summary_path.read_text())
        campaign_text = (f"{layer} {'exhaustive' if kind[0] == '--exhaustive' else 'statistical'}: exit "
                         f"{ran.returncode}, {s['faults']} faults, {s.get('bit_exact')}/{s.get('outputs_compared')}"
                         f" words bit-exact ({time.time() - t0:.0f} s)")
    else:
        campaign_text = f"{layer}: exit {ran.returncode}: {_reason(ran)}"
    log(f"{case.name}: campaign {campaign_text}")

    crossed = _fkhls("crosscheck", project, "--faults", fault_path, "--inputs", xc, "--report", work / "cc",
                     "--no-progress")
    cc_summary = work / "cc" / "summary.json"
    if cc_summary.exists():
        s = json.loads(cc_summary.read_text())
        cc_text = (f"exit {crossed.returncode}: {s['scenarios']} scenarios ({len(faults['faults'])} in file), "
                   f"{s['bit_exact']}/{s['outputs_compared']} words bit-exact")
    else:
        cc_text = f"exit {crossed.returncode}: {_reason(crossed)}"
    log(f"{case.name}: crosscheck {cc_text}")

    # the bar's last clause: faults in Keras kernels, injected and C-simulated, against QKeras with the same bits
    # flipped by FKeras's way (float32 model.predict on the faulty quantized kernel)
    keras_faults = _keras_variable_faults(manifest)
    tf_text = "no Keras-variable kernel/bias (TF way refuses hardware-computed arrays)"
    if keras_faults:
        tf_path = work / "faults_keras.json"
        tf_path.write_text(json.dumps({"seed": 0, "faults": keras_faults}))
        crossed = _fkhls("crosscheck", project, "--faults", tf_path, "--inputs", xc, "--report", work / "cc_tf",
                         "--reference", "tf", "--no-progress")
        tf_summary = work / "cc_tf" / "summary.json"
        if tf_summary.exists():
            s = json.loads(tf_summary.read_text())
            tf_text = f"exit {crossed.returncode}: {s['bit_exact']}/{s['outputs_compared']} words equal"
            causes = s.get("causes") or s.get("cause_counts") or {}
            if causes:
                tf_text += f", causes {causes}"
            if s.get("explained_by_approximate_layers"):
                tf_text += ", all explained by approximate layers"
        else:
            tf_text = f"exit {crossed.returncode}: {_reason(crossed)}"
    log(f"{case.name}: crosscheck --reference tf {tf_text}")
    return [case.name, export_text, verify_text, map_text, campaign_text, cc_text, tf_text]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default="", help="comma-separated case names (default: all)")
    parser.add_argument("--samples", type=int, default=100, help="verify inputs")
    parser.add_argument("--campaign-samples", type=int, default=8, help="campaign and crosscheck inputs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-exhaustive", type=int, default=1200, help="largest exhaustive campaign (bits)")
    parser.add_argument("--keep", default=None, help="keep the work here instead of a temporary directory")
    args = parser.parse_args()
    wanted = set(filter(None, args.only.split(",")))
    cases = [c for c in CASES if not wanted or c.name in wanted]
    unknown = wanted - {c.name for c in CASES}
    if unknown:
        parser.error(f"unknown cases {sorted(unknown)}; known: {[c.name for c in CASES]}")

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    rows = []
    with tempfile.TemporaryDirectory(prefix="fkhls-unseen-") as tmp:
        base = Path(args.keep) if args.keep else Path(tmp)
        base.mkdir(parents=True, exist_ok=True)
        for case in cases:
            try:
                rows.append(run_case(case, base, args.samples, args.campaign_samples, args.seed,
                                     args.max_exhaustive, log))
            except Exception as exc:  # a model this script cannot build is a row, not the end of the run
                rows.append([case.name, f"script error: {type(exc).__name__}: {exc}"[:300], "", "", "", ""])
    from tabulate import tabulate

    print(f"seed {args.seed}; verify on {args.samples} inputs, campaign/crosscheck on {args.campaign_samples}, "
          "uniform in [-2, 2) on ap_fixed<16,6>'s grid")
    print(tabulate(rows, headers=["model", "export", "verify", "faultmap", "campaign (--engine both)", "crosscheck",
                                  "crosscheck --reference tf (kernel/bias faults)"],
                   tablefmt="github"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
