"""The engine's less common graph paths against PyTorch on the same weights:
channel Concat of convolution outputs, BatchNormalization not after a Conv
(per-channel affine), a standalone Add with its Relu, dilated and biased
convolutions, MaxPool with ceil_mode, AveragePool without padding counted,
ReduceMean/ReduceMax heads (keepdims 0 and 1), x.view(x.size(0), -1) (the
Shape/Gather/Unsqueeze/Concat/Reshape chain), BatchNorm1d folded into a
MatMul, a MatMul + Add bias, a bias-free Linear exported without constant
folding (Transpose of the weight), a Flatten of spatial features in a
fixed-size export, opsets 11/13/17 -- and the D4 test-time augmentation
(`predict --tta`) against the mean of PyTorch over the 8 rotations/flips."""
import os
import sys

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import canopytest as ct  # noqa: E402
import tinymodels as tm  # noqa: E402

TOL = 1e-4
MEAN = [0.5] * 4
STD = [0.25] * 4


class Odd(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(4, 6, 3, 2, 1), nn.BatchNorm2d(6), nn.ReLU())
        self.mp = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.ap = nn.AvgPool2d(3, 1, padding=1, count_include_pad=False)
        self.a = nn.Conv2d(6, 4, 1)
        self.b = nn.Conv2d(6, 4, 3, padding=2, dilation=2, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.bn1 = nn.BatchNorm1d(16)
        self.fc1 = nn.Linear(16, 10, bias=False)
        self.bias = nn.Parameter(torch.randn(10) * 0.1)
        self.fc2 = nn.Linear(10, 5)

    def forward(self, x):
        x = self.ap(self.mp(self.stem(x)))
        z = self.bn(torch.cat([self.a(x), self.b(x)], 1))
        v = torch.relu(torch.relu(z) + z)
        h1 = v.mean((2, 3))
        h2 = v.amax((2, 3), keepdim=True)
        h = torch.cat([h1, h2.view(h2.size(0), -1)], 1)
        h = torch.relu(self.fc1(self.bn1(h)) + self.bias)
        return self.fc2(h)


class Spatial(nn.Module):
    """Flatten of (N, 3, 5, 5) features: only at its fixed input size."""

    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(4, 3, 5, 4, 1)
        self.p = nn.MaxPool2d(2)
        self.fc = nn.Linear(75, 4)

    def forward(self, x):
        return self.fc(torch.flatten(self.p(torch.relu(self.c(x))), 1))


def randomize(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.4)
        for mod in model.modules():
            if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
                mod.running_mean.copy_(torch.randn(mod.num_features, generator=g) * 0.2)
                mod.running_var.copy_(torch.rand(mod.num_features, generator=g) + 0.5)
    return model.eval()


def reference(model, arrays, tta=False):
    x = torch.from_numpy(np.stack([((a.astype(np.float64) / 255 - 0.5) / 0.25).astype(np.float32)
                                   for a in arrays]))
    with torch.no_grad():
        if not tta:
            return torch.sigmoid(model(x)).numpy()
        ps = [torch.sigmoid(model(torch.rot90(x.transpose(2, 3) if t else x, k, (2, 3)))).numpy()
              for k in range(4) for t in (False, True)]
        return np.mean(ps, 0)


def check(model, path, chips, what, tta=False):
    paths, arrays = chips
    args = ["predict", "-m", path, "--probs", "--batch", "3"] + (["--tta"] if tta else [])
    got = tm.parse_probs(ct.canopy(*(args + paths)).stdout)[2]
    ref = reference(model, arrays, tta)
    err = abs(got - ref).max()
    assert err <= TOL, "%s: max|p_canopy - p_torch| = %.3g" % (what, err)
    assert ref.max() - ref.min() > 0.05, "%s: degenerate reference" % what
    print("%-40s max|p - p_torch| = %.2g" % (what, err))
    return ref


def main():
    meta = {"canopy.mean": "[0.5, 0.5, 0.5, 0.5]", "canopy.std": "[0.25, 0.25, 0.25, 0.25]"}
    with ct.tmpdir() as d:
        odd = randomize(Odd(), 1)
        for size, opset, fold in ((45, 11, True), (37, 13, False), (64, 17, False)):
            m = dict(meta, **{"canopy.input_size": str(size)})
            path = tm.export(odd, os.path.join(d, "odd%d.onnx" % opset), 4, size=size,
                             opset=opset, fold=fold, meta=m)
            chips = tm.write_chips(d, 4, 4, size, seed=size)
            check(odd, path, chips, "odd ops, %d px, opset %d, folding %s" % (
                size, opset, "on" if fold else "off"))
            if opset == 13:
                info = ct.canopy("info", path).stdout
                for op in ("ReduceMean", "ReduceMax", "Gather", "Unsqueeze", "Reshape", "Transpose",
                           "MatMul"):
                    assert op in info, "%s not in the export, the test misses it:\n%s" % (op, info)
                r1 = check(odd, path, chips, "odd ops, TTA", tta=True)
                r0 = reference(odd, chips[1])
                assert abs(r1 - r0).max() > 1e-3, "TTA changes nothing: the check is void"

        sp = randomize(Spatial(), 2)
        path = tm.export(sp, os.path.join(d, "spatial.onnx"), 4, size=40, dynamic=False,
                         meta=meta)
        check(sp, path, tm.write_chips(d, 3, 4, 40, seed=3), "flatten of spatial features")


if __name__ == "__main__":
    ct.main(main)
