"""canopy predict matches PyTorch: resnet18/34 (fastai v1/v2 and torchvision
heads, 3- and 4-band, band mapping, BatchNorm folded and kept, opsets
11/13/17), a narrow ResNet at an input size that is no multiple of 32, and
the Kaggle `image_name,tags` CSV. The deeper networks are in
test_parity_deep.py (they run in parallel under the harness)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import canopytest as ct  # noqa: E402
import parity  # noqa: E402
from parity import Case  # noqa: E402

CASES = [
    Case("resnet18", "fastai", 3, 64, 11, True, seed=11),
    # 4 channels read from bands 3,2,1,4, own scale and statistics.
    Case("resnet18", "torchvision", 4, 96, 13, False, seed=12, bands=[3, 2, 1, 4],
         scale=1 / 250.0, mean=[0.3, 0.35, 0.4, 0.5], std=[0.2, 0.25, 0.15, 0.3], batch=4),
    Case("resnet34", "fastai1", 4, 96, 17, False, seed=13),
    # A 3-channel model reading bands 4,3,2 of 4-band chips (false colour).
    Case("resnet34", "torchvision", 3, 64, 11, True, seed=14, bands=[4, 3, 2], chip_bands=4,
         batch=5),
]


def test_tags_csv():
    """`canopy predict` without --probs: the Kaggle submission CSV, tags =
    labels with p >= their own threshold, in label order; JPEG and PNG
    chips. A narrow ResNet at 100 px (stride-2 layers on odd sizes)."""
    labels = ["water", "road", "agriculture", "haze", "primary", "slash_burn", "cloudy"]
    thresholds = [0.35, 0.5, 0.2, 0.65, 0.45, 0.55, 0.3]
    case = Case("resnet18", "fastai", 3, 100, 13, True, seed=21, widths=[16, 32, 64, 128],
                labels=labels, thresholds=thresholds, n_chips=12, ext=[".jpg", ".png", ".tif"])
    with ct.tmpdir() as d:
        model, path, chips = parity.prepare(case, d)
        ref, meta = parity.check_probs(case, model, path, chips)[1:]
        assert meta["thresholds"] == thresholds
        out = ct.canopy("predict", "-m", path, "--batch", "5", *chips)
        got = parity.parse_tags_csv(out.stdout)
        assert list(got) == [parity.stem(p) for p in chips], \
            "rows %s, expected one per chip in argument order" % list(got)
        n_tags = 0
        for i, p in enumerate(chips):
            tags = got[parity.stem(p)]
            assert tags == [t for t in labels if t in tags], \
                "%s: tags %s not in label order" % (parity.stem(p), tags)
            for j, lab in enumerate(labels):
                pj = float(ref[i][j])
                if abs(pj - thresholds[j]) <= parity.TOLERANCE:
                    continue  # either answer is right within the tolerance
                assert (lab in tags) == (pj >= thresholds[j]), (
                    "%s: label %s p_torch=%.6f threshold %.2f, canopy tags %s"
                    % (parity.stem(p), lab, pj, thresholds[j], tags))
            n_tags += len(tags)
        # The check means something only if some labels are on and some off.
        assert 0 < n_tags < len(chips) * len(labels), "degenerate tags: %d" % n_tags
        print("tags CSV: %d chips, %d tags, all as PyTorch at per-label thresholds"
              % (len(chips), n_tags))


def main():
    parity.run_cases(CASES)
    test_tags_csv()


if __name__ == "__main__":
    ct.main(main)
