"""`--precision bf16` end to end: `canopy predict --probs --precision bf16`
against PyTorch (float32) on the same chips, the fp32 fallback forced with
CANOPY_NO_BF16=1 (exactly the fp32 output, one message on stderr), and
`canopy bench` saying which precision ran.

Tolerance: bf16 keeps 8 bits of mantissa, so every convolution's operands
carry a relative rounding error of up to 2^-9 (about 2e-3), and these
random-weight models amplify what enters them (their float32 rounding alone
moves the probabilities by up to 2e-5, 100x float32's epsilon, see
parity.check_model). Measured here: max |p_bf16 - p_torch| = 2.1e-2 for the
ResNet-18 case and 4.3e-2 for the narrow ResNet-50 with bf16 Winograd
(1.8e-2 and 4.2e-2 with fp32 Winograd; fp32: 2.6e-6 and 3.5e-6), so
BF16_TOLERANCE is 0.1, 1000x the fp32 parity tolerance. What a
trained model loses is measured in BENCHMARKS.md (demo chips). The kernels
themselves (GEMM and Winograd) are checked tightly by
tests/engine/test_gemm_bf16. The test also requires the bf16 output to differ from the fp32 one, so a run that
silently stayed fp32 fails.

Skipped (77) on a CPU without AVX512_BF16: there is no bf16 result to
compare, and the forced fallback is what such a CPU runs anyway.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import canopytest as ct  # noqa: E402
import parity  # noqa: E402
from parity import Case  # noqa: E402
import numpy as np  # noqa: E402

BF16_TOLERANCE = 0.1
FALLBACK = "canopy: --precision bf16: this CPU has no AVX512_BF16; running in fp32"

CASES = [
    # 7x7 stride-2 stem (im2col), 3x3 same-shape, stride-2 3x3 and 1x1
    # projections, batch of 4 with a partial last batch.
    Case("resnet18", "fastai", 3, 64, 13, True, seed=31, n_chips=7, batch=4),
    # Bottlenecks (1x1 dense GEMMs), 4 bands read in another order, an
    # input size that is no multiple of 32.
    Case("resnet50", "torchvision", 4, 80, 17, True, seed=32, bands=[3, 2, 1, 4],
         widths=[16, 32, 64, 128], n_chips=5),
]


def check_case(case, d):
    model, path, chips = parity.prepare(case, d)
    ref, ref64, meta = parity.reference(model, path, chips)
    parity.check_model(ref, ref64, case.name())
    args = ["predict", "-m", path, "--probs", "--threads", "2"]
    if case.batch:
        args += ["--batch", str(case.batch)]
    fp32 = ct.canopy(*(args + chips))
    bf16 = ct.canopy(*(args + ["--precision", "bf16"] + chips))
    assert FALLBACK not in bf16.stderr, bf16.stderr
    p32 = parity.probs_array(fp32.stdout, chips, meta["labels"])
    p16 = parity.probs_array(bf16.stdout, chips, meta["labels"])
    torch32 = ref.double().numpy()
    vs_torch = float(np.abs(p16 - torch32).max())
    vs_fp32 = float(np.abs(p16 - p32).max())
    print("bf16 %-52s max|p_bf16 - p_torch| = %.2e, max|p_bf16 - p_fp32| = %.2e, "
          "max|p_fp32 - p_torch| = %.2e" % (case.name(), vs_torch, vs_fp32,
                                          float(np.abs(p32 - torch32).max())))
    assert vs_torch <= BF16_TOLERANCE, "%s: bf16 is %.3g from PyTorch (tolerance %g)" % (
        case.name(), vs_torch, BF16_TOLERANCE)
    assert vs_fp32 > 1e-6, "%s: bf16 gave the fp32 probabilities: bf16 did not run" % case.name()

    # The fallback, forced: exactly the fp32 output, one line on stderr.
    env = dict(os.environ, CANOPY_NO_BF16="1")
    fb = ct.canopy(*(args + ["--precision", "bf16"] + chips), env=env)
    assert fb.stdout == fp32.stdout, "%s: the forced fallback differs from fp32" % case.name()
    assert fb.stderr.count(FALLBACK) == 1, fb.stderr
    return path


def run():
    ver = ct.canopy("--version").stdout
    if "bf16 available" not in ver:
        print("SKIP: this CPU has no AVX512_BF16 (canopy --version: %s)"
              % ver.strip().splitlines()[-1])
        sys.exit(ct.SKIP)
    with ct.tmpdir() as d:
        path = None
        for case in CASES:
            path = check_case(case, d)
        bench = ["bench", "-m", path, "--batch", "2", "--seconds", "0", "--threads", "2"]
        out = ct.canopy(*(bench + ["--precision", "bf16"]))
        assert " precision=bf16 " in out.stdout and FALLBACK not in out.stderr, out
        out = ct.canopy(*(bench + ["--precision", "bf16"]),
                        env=dict(os.environ, CANOPY_NO_BF16="1"))
        assert " precision=fp32 " in out.stdout and out.stderr.count(FALLBACK) == 1, out
        out = ct.canopy(*bench)
        assert " precision=fp32 " in out.stdout and FALLBACK not in out.stderr, out
        # The AVX2 path forced on this CPU: fp32, and the line names the
        # path, not the CPU.
        out = ct.canopy(*(bench + ["--precision", "bf16", "--isa", "avx2"]))
        assert " precision=fp32 " in out.stdout and FALLBACK not in out.stderr, out
        assert out.stderr.count("bf16 runs on the AVX-512 path only") == 1, out.stderr
        for w in ("fp32", "bf16", "auto"):
            out = ct.canopy(*(bench + ["--precision", "bf16", "--winograd-precision", w]))
            assert " precision=bf16 " in out.stdout, out
        p = ct.canopy("bench", "--winograd-precision", "int8", check=False)
        assert p.returncode == 2 and "--winograd-precision expects" in p.stderr, p
        for cmd in ("predict", "bench", "evaluate", "classify"):
            p = ct.canopy(cmd, "--precision", "int4", "x.tif", check=False)
            assert p.returncode == 2 and "--precision expects fp32, bf16 or int8" in p.stderr, (
                cmd, p)
        print("bench reports the precision that ran; --precision int4 is a usage error (exit 2)")


ct.main(run)
