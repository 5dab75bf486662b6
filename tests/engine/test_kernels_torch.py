"""The kernels against PyTorch itself: the naive `_ref` kernels (which the C
tests hold every optimised kernel to) and every convolution path (auto,
canopy's GEMM, Winograd, OpenBLAS), on random data, computed by
tests/engine/kernel_driver (canopy's GEMM on AVX-512 and on AVX2 + FMA,
wherever the CPU has them) and compared with torch.nn.functional in double
precision. Pins down the semantics the C tests cannot: asymmetric padding,
dilation, ceil-mode pooling windows, count_include_pad, the layouts.

Tolerance: |got - want| <= 1e-6 + rtol * sum|terms| (the same operation on
absolute values), rtol 1e-5, or 3e-5 for Winograd F(4x4, 3x3)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import canopytest as ct  # noqa: E402

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
except ImportError as e:
    print("SKIP: this test needs numpy and torch (Debian: python3-torch): %s" % e)
    sys.exit(ct.SKIP)

DRIVER = os.path.join(ct.BUILDDIR, "tests", "engine", "kernel_driver")
RNG = np.random.default_rng(20240611)


def write(d, name, a):
    np.ascontiguousarray(a, dtype=np.float32).tofile(os.path.join(d, name))


def read(d, name, shape):
    return np.fromfile(os.path.join(d, name), dtype=np.float32).reshape(shape)


def drive(op, d, *ints):
    ct.run([DRIVER, op, d] + [str(int(i)) for i in ints])


def cnhw(t):
    """(N, C, ...) torch tensor -> (C, N*...) float32 array."""
    a = t.detach().numpy()
    return np.ascontiguousarray(np.swapaxes(a, 0, 1)).reshape(a.shape[1], -1)


def cpu_flags():
    """The CPU's feature flags (Linux), or an empty set."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


FLAGS = cpu_flags()
# The paths this CPU must run: the driver skips one only where it lacks it.
EXPECTED = {"ref", "auto", "openblas"}
if "avx512f" in FLAGS:
    EXPECTED |= {"gemm", "winograd"}
if {"avx2", "fma"} <= FLAGS:
    EXPECTED |= {"gemm-avx2", "winograd-avx2"}


def close(what, got, want, mag, rtol):
    got = got.astype(np.float64)
    same = got == want          # equal infinities (all-padding max windows) match
    mag = np.where(same, 0.0, mag)
    tol = 1e-6 + rtol * mag
    err = np.where(same, 0.0, np.abs(np.where(same, 0.0, got) - np.where(same, 0.0, want)))
    bad = ~(err <= tol)
    assert not bad.any(), "%s: %d of %d values off; worst %.3g (tolerance %.3g), got %r want %r" % (
        what, bad.sum(), bad.size, (err / tol).max(), tol.flat[np.argmax(err / tol)],
        got.flat[np.argmax(err / tol)], want.flat[np.argmax(err / tol)])
    return (err / np.maximum(mag, 1e-30)).max()


def torch_conv(x, w, b, r, stride, pads, dil, relu):
    """x (N,C,H,W), pads (t, l, b, r): double-precision reference."""
    pt, pl, pb, pr = pads
    y = F.conv2d(F.pad(x, (pl, pr, pt, pb)), w, b, stride=stride, dilation=dil)
    if r is not None:
        y = y + r
    return torch.relu(y) if relu else y


def check_conv(name, N, C, H, W, K, R, S, stride, pads, dil, bias, res, relu):
    x = torch.tensor(RNG.uniform(-1, 1, (N, C, H, W)), dtype=torch.float32)
    w = torch.tensor(RNG.uniform(-0.5, 0.5, (K, C, R, S)), dtype=torch.float32)
    b = torch.tensor(RNG.uniform(-0.5, 0.5, K), dtype=torch.float32) if bias else None
    y0 = torch_conv(x.double(), w.double(), None, None, stride, pads, dil, False)
    r = torch.tensor(RNG.uniform(-1, 1, tuple(y0.shape)), dtype=torch.float32) if res else None
    dbl = (lambda t: None if t is None else t.double())
    want = cnhw(torch_conv(x.double(), w.double(), dbl(b), dbl(r), stride, pads, dil, relu))
    mag = cnhw(torch_conv(x.double().abs(), w.double().abs(), None if b is None else b.double().abs(),
                          None if r is None else r.double().abs(), stride, pads, dil, False))
    with ct.tmpdir() as d:
        write(d, "x.f32", cnhw(x))
        write(d, "w.f32", w.numpy())
        if bias:
            write(d, "b.f32", b.numpy())
        if res:
            write(d, "r.f32", cnhw(r))
        drive("conv", d, N, C, H, W, K, R, S, stride[0], stride[1], *pads, dil[0], dil[1],
              bias, res, relu)
        report = []
        for path in ("ref", "auto", "gemm", "winograd", "gemm-avx2", "winograd-avx2",
                     "openblas"):
            f = os.path.join(d, path + ".f32")
            if not os.path.exists(f):
                assert path not in EXPECTED, "conv %s: path %s did not run" % (name, path)
                continue
            rtol = 3e-5 if path in ("winograd", "winograd-avx2", "auto") else 1e-5
            e = close("conv %s [%s]" % (name, path), read(d, path + ".f32", want.shape), want,
                      mag, rtol)
            report.append("%s %.1e" % (path, e))
    print("ok conv %-28s max err/sum|terms|: %s" % (name, ", ".join(report)))


def check_pool(name, kind, N, C, H, W, k, s, p, ceil, incl):
    """Symmetric padding as PyTorch has it; P, Q as PyTorch computes them."""
    x = torch.tensor(RNG.uniform(-1, 1, (N, C, H, W)), dtype=torch.float32)
    if kind == "max":
        want = F.max_pool2d(x.double(), k, s, p, ceil_mode=ceil)
    else:
        want = F.avg_pool2d(x.double(), k, s, p, ceil_mode=ceil, count_include_pad=bool(incl))
    P, Q = want.shape[2], want.shape[3]
    want = cnhw(want)
    with ct.tmpdir() as d:
        write(d, "x.f32", cnhw(x))
        drive(kind + "pool", d, N, C, H, W, k, k, s, s, p, p, p, p, P, Q, incl)
        for path in ("ref", "fast"):
            close("%spool %s [%s]" % (kind, name, path), read(d, path + ".f32", want.shape),
                  want, np.abs(want), 1e-6)
    print("ok %spool %s -> %dx%d" % (kind, name, P, Q))


def check_maxpool_asymmetric():
    """Asymmetric padding, which PyTorch takes as an explicit -inf pad; the
    first column of windows lies wholly in the padding (-inf both sides)."""
    N, C, H, W, pads = 2, 5, 11, 14, (0, 2, 1, 0)
    x = torch.tensor(RNG.uniform(-3, -1, (N, C, H, W)), dtype=torch.float32)
    xp = F.pad(x.double(), (pads[1], pads[3], pads[0], pads[2]), value=float("-inf"))
    want = F.max_pool2d(xp, (3, 2), (2, 2))
    P, Q = want.shape[2], want.shape[3]
    want = cnhw(want)
    with ct.tmpdir() as d:
        write(d, "x.f32", cnhw(x))
        drive("maxpool", d, N, C, H, W, 3, 2, 2, 2, *pads, P, Q, 0)
        for path in ("ref", "fast"):
            close("maxpool asymmetric [%s]" % path, read(d, path + ".f32", want.shape), want,
                  np.abs(want), 0)
    print("ok maxpool asymmetric -> %dx%d" % (P, Q))


def check_global_linear_sigmoid():
    N, C, H, W = 3, 37, 7, 6
    x = torch.tensor(RNG.uniform(-2, 2, (N, C, H, W)), dtype=torch.float32)
    with ct.tmpdir() as d:
        write(d, "x.f32", cnhw(x))
        for op, want in (("gavg", x.double().mean((2, 3))), ("gmax", x.double().amax((2, 3)))):
            drive(op, d, N, C, H * W)
            for path in ("ref", "fast"):
                close("%s [%s]" % (op, path), read(d, path + ".f32", (N, C)), want.numpy(),
                      np.abs(want.numpy()), 1e-6)
    print("ok global average and max pooling")
    for N, K, M, bias, relu in ((1, 2048, 17, 1, 0), (5, 300, 129, 0, 1)):
        x = torch.tensor(RNG.uniform(-1, 1, (N, K)), dtype=torch.float32)
        w = torch.tensor(RNG.uniform(-0.1, 0.1, (M, K)), dtype=torch.float32)
        b = torch.tensor(RNG.uniform(-1, 1, M), dtype=torch.float32)
        want = F.linear(x.double(), w.double(), b.double() if bias else None)
        mag = F.linear(x.double().abs(), w.double().abs(), b.double().abs() if bias else None)
        if relu:
            want = torch.relu(want)
        with ct.tmpdir() as d:
            write(d, "x.f32", x.numpy())
            write(d, "w.f32", w.numpy())
            write(d, "b.f32", b.numpy())
            drive("linear", d, N, K, M, bias, relu)
            for path in ("ref", "fast"):
                close("linear %dx%dx%d [%s]" % (N, K, M, path), read(d, path + ".f32", (N, M)),
                      want.numpy(), mag.numpy(), 1e-5)
    print("ok linear")
    x = np.concatenate([RNG.uniform(-30, 30, 1000),
                        [0, 88, -88, 89, -89, 100, -100, 1e30, -1e30, np.inf, -np.inf]])
    x = x.astype(np.float32)
    want = torch.sigmoid(torch.tensor(x, dtype=torch.float64)).numpy()
    with ct.tmpdir() as d:
        write(d, "x.f32", x)
        drive("sigmoid", d, x.size)
        got = read(d, "fast.f32", x.shape)
    assert np.isfinite(got).all(), "sigmoid gave non-finite values"
    close("sigmoid", got, want, np.abs(want), 1e-6)
    print("ok sigmoid")


def main():
    if not os.path.exists(DRIVER):
        raise RuntimeError("%s not built (make check builds it)" % DRIVER)
    #          name                     N  C   H   W   K   R  S  stride  pads (t,l,b,r) dil  bias res relu
    check_conv("3x3 pad 1 (Winograd)", 2, 64, 16, 16, 64, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1, 1, 1)
    check_conv("3x3 odd sizes", 3, 13, 11, 9, 21, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1, 0, 1)
    check_conv("7x7/2 stem", 2, 3, 37, 30, 64, 7, 7, (2, 2), (3, 3, 3, 3), (1, 1), 0, 0, 1)
    check_conv("1x1/2 downsample", 2, 40, 15, 15, 72, 1, 1, (2, 2), (0, 0, 0, 0), (1, 1), 1, 0, 0)
    check_conv("1x1", 3, 70, 9, 10, 36, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1), 1, 1, 1)
    check_conv("3x3 asymmetric dilated", 2, 9, 14, 17, 11, 3, 3, (2, 1), (0, 2, 1, 0), (1, 2), 1, 0, 0)
    check_conv("5x3 stride 3", 1, 6, 20, 19, 10, 5, 3, (3, 3), (2, 1, 2, 1), (1, 1), 1, 1, 0)
    check_pool("3x3/2 pad 1", "max", 2, 9, 17, 20, 3, 2, 1, False, 0)
    check_pool("3x3/2 pad 1 ceil", "max", 2, 9, 10, 12, 3, 2, 1, True, 0)
    check_pool("2x2/2 ceil odd", "max", 1, 4, 13, 11, 2, 2, 0, True, 0)
    check_pool("3x3/2 pad 1 ceil incl", "avg", 2, 9, 10, 12, 3, 2, 1, True, 1)
    check_pool("3x3/2 pad 1 ceil excl", "avg", 2, 9, 10, 12, 3, 2, 1, True, 0)
    check_pool("3x3/1 pad 1 incl", "avg", 1, 6, 7, 9, 3, 1, 1, False, 1)
    check_maxpool_asymmetric()
    check_global_linear_sigmoid()


if __name__ == "__main__":
    ct.main(main)
