"""`--precision int8` end to end: a model calibrated by `canopy calibrate`
on its chips; int8-probe (every convolution on the int8 GEMM) against
PyTorch in float64 quantising the same operands as documented in
kernels.h; `canopy predict --probs --precision int8` against PyTorch
(float32) on the same chips; the fp32 fallback forced with
CANOPY_NO_INT8=1 (exactly the fp32 output, one message on stderr); an
uncalibrated model refused (exit 2, pointing at `canopy calibrate`); and
`canopy bench` saying which precision ran.

Tolerance: int8 keeps 8 bits per activation over its calibrated range
(a step of range/255) and 8 bits per weight, and these random-weight
models amplify what enters them about 100x more than their float32
rounding suggests (see test_bf16.py): PyTorch itself, quantising the same
operands, moves the probabilities by up to 8.4e-2 (ResNet-18) and 2.3e-1
(narrow ResNet-50) from fp32. canopy predict in int8 (with bf16 Winograd
on 3x3 stride-1 layers where the CPU has bf16) measured 7.8e-2 and 2.4e-1
from PyTorch fp32; INT8_TOLERANCE is 0.35. The exact check is the one
against that simulation (check_simulated, with every convolution on the
int8 GEMM), and the GEMM itself is checked on the same quantised
operands by tests/engine/test_gemm_int8. What a trained model loses is
measured in BENCHMARKS.md (demo chips: F2 and max |p_int8 - p_fp32|). The
int8 output must also differ from the fp32 one, so a run that silently
stayed fp32 fails.

Skipped (77) on a CPU without AVX512_VNNI: there is no int8 result to
compare, and the forced fallback is what such a CPU runs anyway.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import canopytest as ct  # noqa: E402
import parity  # noqa: E402
from parity import Case  # noqa: E402
import numpy as np  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import onnx  # noqa: E402
import torch  # noqa: E402

PROBE = os.path.join(ct.BUILDDIR, "tests", "model", "int8-probe")

INT8_TOLERANCE = 0.35
FALLBACK = "canopy: --precision int8: this CPU has no AVX512_VNNI; running in fp32"

CASES = [
    # 7x7 stride-2 stem on a signed input (zero point 128), 3x3 same-shape,
    # stride-2 3x3 and 1x1 projections, batch of 4 with a partial last batch.
    Case("resnet18", "fastai", 3, 64, 13, True, seed=41, n_chips=7, batch=4),
    # Bottlenecks (1x1 dense GEMMs, B quantised straight from the
    # activations), 4 bands read in another order, an input size that is
    # no multiple of 32.
    Case("resnet50", "torchvision", 4, 80, 17, True, seed=42, bands=[3, 2, 1, 4],
         widths=[16, 32, 64, 128], n_chips=5),
]


def fake_quant(x, lo, hi):
    """x quantised to u8 over [lo, hi] and back, as kernels.h documents
    (scale and zero point computed in float32, as canopy computes them)."""
    lo, hi = np.float32(min(lo, 0.0)), np.float32(max(hi, 0.0))
    s = np.float32((hi - lo) / np.float32(255.0))
    if not s > 0:
        s = np.float32(1.0)
    z = float(np.rint(-lo / s))
    q = torch.clamp(torch.round(x / float(s)), -z, 255.0 - z)
    return q * float(s)


def simulated(model, cal, chips, meta, dtype=torch.float64):
    """PyTorch in float64 with every convolution's input quantised over the
    range canopy.int8 gives its ONNX input tensor, and its weights per
    output channel (symmetric, max|w| / 127; BatchNorm's per-channel scale
    after the convolution commutes with that)."""
    m = onnx.load(cal)
    ranges = {a["tensor"]: (a["min"], a["max"])
              for a in json.loads({p.key: p.value for p in m.metadata_props}["canopy.int8"])
              ["activations"]}
    inputs = [n.input[0] for n in m.graph.node if n.op_type == "Conv"]
    x = torch.stack([parity.torch_input(parity.read_chip(p), meta) for p in chips]).to(dtype)
    model = model.to(dtype).eval()
    convs = [mod for mod in model.modules() if isinstance(mod, torch.nn.Conv2d)]
    order = []
    hooks = [c.register_forward_pre_hook(lambda mod, args: order.append(mod)) for c in convs]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    assert len(order) == len(inputs), (len(order), len(inputs))
    saved = {}
    with torch.no_grad():
        for c in convs:
            w = c.weight.data
            saved[c] = w.clone()
            sw = w.abs().amax(dim=(1, 2, 3), keepdim=True) / 127.0
            sw[sw == 0] = 1.0
            c.weight.data = torch.clamp(torch.round(w / sw), -127, 127) * sw
    calls = iter(range(len(order)))

    def quant_input(mod, args):
        i = next(calls)
        assert mod is order[i]
        return (fake_quant(args[0], *ranges[inputs[i]]),)

    hooks = [c.register_forward_pre_hook(quant_input) for c in convs]
    with torch.no_grad():
        p = torch.sigmoid(model(x)).numpy()
    for h in hooks:
        h.remove()
    with torch.no_grad():
        for c, w in saved.items():
            c.weight.data = w
    model.float()
    return p, x


def check_simulated(case, model, cal, chips, meta, fp32_64, d):
    """int8-probe (every convolution on the int8 GEMM) against PyTorch
    quantising the same operands. Quantisation is discontinuous: a value
    that float rounding puts on the other side of a rounding tie moves by a
    whole step (range/255), and these random-weight models amplify that,
    so even the reference in float32 and in float64 differ (measured: max
    3.5e-2 and 2.2e-2, mean 2.7e-3 and 3.6e-3). canopy must be as close to
    the float64 reference as its float32 twin is (mean, within 2x; measured
    2.0e-3 and 3.9e-3), and far closer than fp32 is (quantisation moves the
    mean by 1.6e-2 and 3.0e-2 here): a wrong zero point, scale, weight quad
    or range moves every output, not a few."""
    want, x = simulated(model, cal, chips, meta)
    twin, _ = simulated(model, cal, chips, meta, torch.float32)
    tag = case.name().replace("/", "_")
    xin, out = os.path.join(d, tag + "-in.f32"), os.path.join(d, tag + "-out.f32")
    x.float().numpy().tofile(xin)
    p = subprocess.run([PROBE, cal, str(x.shape[-1]), str(x.shape[0]), xin, out],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.returncode == 0 and p.stdout.strip() == "precision=int8", p
    got = np.fromfile(out, dtype=np.float32).reshape(want.shape)
    err = float(np.abs(got - want).mean())
    ref_noise = float(np.abs(twin - want).mean())
    quant = float(np.abs(want - fp32_64).mean())
    print("int8 %-52s int8 GEMM everywhere against PyTorch quantising the same operands: "
          "mean |diff| %.2e (reference float32 vs float64 %.2e; quantisation moves fp32 by "
          "%.2e); max |diff| %.2e" % (case.name(), err, ref_noise, quant,
                                      float(np.abs(got - want).max())))
    assert err <= 2 * ref_noise and err <= 0.35 * quant, \
        "%s: int8 is %.3g (mean) from the simulated quantisation" % (case.name(), err)


def check_case(case, d):
    model, path, chips = parity.prepare(case, d)
    ref, ref64, meta = parity.reference(model, path, chips)
    parity.check_model(ref, ref64, case.name())
    cal = os.path.join(d, case.name().replace(" ", "_").replace("/", "_") + "-int8.onnx")
    ct.canopy("calibrate", path, "--write-model", cal, "-q", *chips)
    check_simulated(case, model, cal, chips, meta, ref64.numpy(), d)
    args = ["predict", "-m", cal, "--probs", "--threads", "2"]
    if case.batch:
        args += ["--batch", str(case.batch)]
    fp32 = ct.canopy(*(args + chips))
    int8 = ct.canopy(*(args + ["--precision", "int8"] + chips))
    assert FALLBACK not in int8.stderr, int8.stderr
    p32 = parity.probs_array(fp32.stdout, chips, meta["labels"])
    p8 = parity.probs_array(int8.stdout, chips, meta["labels"])
    torch32 = ref.double().numpy()
    vs_torch = float(np.abs(p8 - torch32).max())
    vs_fp32 = float(np.abs(p8 - p32).max())
    print("int8 %-52s max|p_int8 - p_torch| = %.2e, max|p_int8 - p_fp32| = %.2e, "
          "max|p_fp32 - p_torch| = %.2e" % (case.name(), vs_torch, vs_fp32,
                                          float(np.abs(p32 - torch32).max())))
    assert vs_torch <= INT8_TOLERANCE, "%s: int8 is %.3g from PyTorch (tolerance %g)" % (
        case.name(), vs_torch, INT8_TOLERANCE)
    assert vs_fp32 > 1e-6, "%s: int8 gave the fp32 probabilities: int8 did not run" % case.name()

    # The fallback, forced: exactly the fp32 output, one line on stderr.
    env = dict(os.environ, CANOPY_NO_INT8="1")
    fb = ct.canopy(*(args + ["--precision", "int8"] + chips), env=env)
    assert fb.stdout == fp32.stdout, "%s: the forced fallback differs from fp32" % case.name()
    assert fb.stderr.count(FALLBACK) == 1, fb.stderr

    # The model as exported has no ranges: int8 is refused, once, with
    # what to do, and nothing on stdout.
    p = ct.canopy(*(["predict", "-m", path, "--probs", "--precision", "int8"] + chips),
                  check=False)
    assert p.returncode == 2 and p.stdout == "", p
    assert "canopy.int8" in p.stderr and "canopy calibrate" in p.stderr, p.stderr
    return cal


def run():
    ver = ct.canopy("--version").stdout
    if "int8 available" not in ver:
        print("SKIP: this CPU has no AVX512_VNNI (canopy --version: %s)"
              % ver.strip().splitlines()[-1])
        sys.exit(ct.SKIP)
    with ct.tmpdir() as d:
        cal = None
        for case in CASES:
            cal = check_case(case, d)
        bench = ["bench", "-m", cal, "--batch", "2", "--seconds", "0", "--threads", "2"]
        out = ct.canopy(*(bench + ["--precision", "int8"]))
        assert " precision=int8 " in out.stdout and FALLBACK not in out.stderr, out
        out = ct.canopy(*(bench + ["--precision", "int8"]),
                        env=dict(os.environ, CANOPY_NO_INT8="1"))
        assert " precision=fp32 " in out.stdout and out.stderr.count(FALLBACK) == 1, out
        out = ct.canopy(*bench)
        assert " precision=fp32 " in out.stdout and FALLBACK not in out.stderr, out
        # The AVX2 path forced on this CPU: fp32, and the line names the
        # path, not the CPU.
        out = ct.canopy(*(bench + ["--precision", "int8", "--isa", "avx2"]))
        assert " precision=fp32 " in out.stdout and FALLBACK not in out.stderr, out
        assert out.stderr.count("int8 runs on the AVX-512 path only") == 1, out.stderr
        print("bench reports the precision that ran")


ct.main(run)
