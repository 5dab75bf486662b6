"""`--precision int8` end to end: a model calibrated by `canopy calibrate`
on its chips, then `canopy predict --probs --precision int8` against
PyTorch (float32) on the same chips; the fp32 fallback forced with
CANOPY_NO_INT8=1 (exactly the fp32 output, one message on stderr); an
uncalibrated model refused (exit 2, pointing at `canopy calibrate`); and
`canopy bench` saying which precision ran.

Tolerance: int8 keeps 8 bits per activation over its calibrated range
(a step of range/255, so a relative error of up to 2e-3 of the range per
value) and 8 bits per weight (up to 4e-3 of a channel's largest weight),
and, on CPUs with bf16, 3x3 stride-1 layers run bf16 Winograd. These
random-weight models amplify what enters them about 100x more than their
float32 rounding suggests (see test_bf16.py). Measured here: max |p_int8 -
p_torch| = 3.6e-2 (ResNet-18) and 5.2e-2 (narrow ResNet-50), against bf16's
2.1e-2 and 4.3e-2; INT8_TOLERANCE is 0.15. What a trained model loses is
measured in BENCHMARKS.md (demo chips: F2 and max |p_int8 - p_fp32|). The
GEMM itself is checked tightly, on the same quantised operands, by
tests/engine/test_gemm_int8. The int8 output must also differ from the
fp32 one, so a run that silently stayed fp32 fails.

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

INT8_TOLERANCE = 0.15
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


def probs(out, chips, labels):
    got = parity.parse_probs_csv(out, labels)
    return np.array([got[parity.stem(p)] for p in chips], dtype=np.float64)


def check_case(case, d):
    model, path, chips = parity.prepare(case, d)
    ref, ref64, meta = parity.reference(model, path, chips)
    parity.check_model(ref, ref64, case.name())
    cal = os.path.join(d, case.name().replace(" ", "_").replace("/", "_") + "-int8.onnx")
    ct.canopy("calibrate", path, "--write-model", cal, "-q", *chips)
    args = ["predict", "-m", cal, "--probs", "--threads", "2"]
    if case.batch:
        args += ["--batch", str(case.batch)]
    fp32 = ct.canopy(*(args + chips))
    int8 = ct.canopy(*(args + ["--precision", "int8"] + chips))
    assert FALLBACK not in int8.stderr, int8.stderr
    p32 = probs(fp32.stdout, chips, meta["labels"])
    p8 = probs(int8.stdout, chips, meta["labels"])
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
        print("bench reports the precision that ran")


ct.main(run)
