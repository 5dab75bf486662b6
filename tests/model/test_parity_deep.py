"""canopy predict matches PyTorch on the bottleneck ResNets: resnet50 at
64/96/128 px, resnet101 and resnet152 at 64 px; fastai v1/v2 and torchvision
heads, 3- and 4-band, BatchNorm folded and kept, opsets 11/13/17.
(resnet18/34 and the CSV output: test_parity.py.)"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import canopytest as ct  # noqa: E402
import parity  # noqa: E402
from parity import Case  # noqa: E402

CASES = [
    Case("resnet50", "fastai", 3, 128, 13, True, seed=31, n_chips=4),
    Case("resnet50", "fastai1", 4, 64, 17, False, seed=32, batch=4),
    Case("resnet50", "torchvision", 3, 96, 11, False, seed=33, n_chips=4),
    Case("resnet101", "fastai", 3, 64, 13, False, seed=34, n_chips=4),
    Case("resnet101", "torchvision", 4, 64, 17, True, seed=35, n_chips=4),
    Case("resnet152", "fastai1", 3, 64, 11, True, seed=36, n_chips=4),
]


def main():
    parity.run_cases(CASES)


if __name__ == "__main__":
    ct.main(main)
