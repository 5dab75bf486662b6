"""Helpers shared by the tests of `canopy evaluate` and classifier/eval."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import canopytest as ct  # noqa: E402

from canopy_labels import KAGGLE_LABELS  # noqa: E402,F401  (scripts/ is on PYTHONPATH)
from onnxbytes import entry_bytes  # noqa: E402,F401  (tests/lib/ is on PYTHONPATH)

PROBE = os.path.join(ct.BUILDDIR, "tests", "eval", "eval-probe")
DATA = os.path.join(ct.SRCDIR, "tests", "eval", "data")


def probe(*args, check=True):
    """Runs eval-probe; returns (CompletedProcess, parsed JSON or None)."""
    p = ct.run([PROBE] + [str(a) for a in args], check=check)
    out = json.loads(p.stdout) if p.returncode == 0 and p.stdout.startswith("{") else None
    return p, out


def write_data(path, truth, probs, thresholds):
    """The probe's DATA format; floats as float32 with 9 significant digits
    so that the C side reads exactly the same values."""
    import numpy as np
    n, L = truth.shape
    with open(path, "w") as f:
        f.write("%d %d\n" % (n, L))
        f.write(" ".join("%.9g" % v for v in np.asarray(thresholds, np.float32)) + "\n")
        for row in truth:
            f.write(" ".join("1" if v else "0" for v in row) + "\n")
        for row in np.asarray(probs, np.float32):
            f.write(" ".join("%.9g" % v for v in row) + "\n")


def splitmix_split(n, fraction, seed):
    """The documented split (eval.h, cnp_split_rows), written independently:
    SplitMix64, Fisher-Yates from the end with rejection sampling, the first
    round(fraction * n) of the permutation held out."""
    M = (1 << 64) - 1
    state = seed & M

    def nxt():
        nonlocal state
        state = (state + 0x9e3779b97f4a7c15) & M
        z = state
        z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & M
        z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & M
        return z ^ (z >> 31)

    def below(bound):
        limit = M - (M % bound)
        while True:
            x = nxt()
            if x < limit:
                return x % bound

    perm = list(range(n))
    for i in range(n - 1, 0, -1):
        j = below(i + 1)
        perm[i], perm[j] = perm[j], perm[i]
    nh = int(fraction * n + 0.5)  # lround for positive values
    nh = min(max(nh, 1), n - 1)
    return sorted(perm[nh:]), sorted(perm[:nh])
