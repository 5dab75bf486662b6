"""`canopy evaluate --optimize-thresholds --split` with the demo model on demo
chips it was not trained on (scripts/make-demo-data, a seed of its own):
thresholds fitted on half the chips never lower the F2 of that half, and
raise the F2 of the other half on average over three seeded splits. The F2 figures are
checked against scikit-learn on `canopy predict --probs` of the same chips."""
import csv
import io
import json
import os
import warnings

import numpy as np
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import fbeta_score

import evaltest as et
from evaltest import ct

N_CHIPS = 300


def test():
    model = os.environ.get("CANOPY_MODEL") or os.path.join(ct.SRCDIR, "data", "canopy-demo.onnx")
    assert os.path.exists(model), "the demo model %s is missing" % model
    with ct.tmpdir() as d:
        chips = os.path.join(d, "chips")
        ct.run([ct.PYTHON3, ct.script("make-demo-data"), "--chips", chips, "--n", str(N_CHIPS),
                "--seed", "424242", "--jobs", "2", "-q"])
        labels = os.path.join(chips, "train_v2.csv")
        images = os.path.join(chips, "train-jpg")
        # canopy predict --probs of the same chips, for scikit-learn.
        rows = list(csv.reader(open(labels, newline="")))[1:]
        names = [r[0] for r in rows]
        q = ct.canopy("predict", "-m", model, "--probs",
                      *[os.path.join(images, n + ".jpg") for n in names])
        out = list(csv.reader(io.StringIO(q.stdout)))
        lab = out[0][1:]
        probs = {r[0]: [float(v) for v in r[1:]] for r in out[1:]}
        P = np.array([probs[n] for n in names], np.float32)
        truth = np.array([[t in r[1].split() for t in lab] for r in rows], np.uint8)

        # Three splits, because one split of a few hundred chips can go either
        # way by chance. The demo model is well calibrated at 0.2, so the
        # held-out gain is small (on 1000 chips of seed 7, 20 splits: +0.0004
        # mean, 0.0021 s.d.); on these fixed chips and seeds it is positive.
        # A retrained demo model may need other seeds here: what must hold
        # for any model is that the fitted F2 never drops.
        gains = []
        for seed in (1, 2, 3):
            report = os.path.join(d, "report%d.json" % seed)
            p = ct.canopy("evaluate", "-m", model, "--labels", labels, "--images", images,
                          "--optimize-thresholds", "--split", "0.5", "--seed", seed,
                          "--report", report, "-q")
            rep = json.load(open(report))
            if seed == 1:
                print(p.stdout)
            print("seed %d: fitted F2 %.4f -> %.4f, held-out F2 %.4f -> %.4f"
                  % (seed, rep["f2_before"], rep["f2_after"], rep["f2_heldout_before"],
                     rep["f2_heldout_after"]))
            assert rep["n"] == N_CHIPS and rep["missing_images"] == 0, rep
            assert list(rep["labels"]) == lab, (list(rep["labels"]), lab)
            assert rep["f2_after"] >= rep["f2_before"], (rep["f2_before"], rep["f2_after"])
            gains.append(rep["f2_heldout_after"] - rep["f2_heldout_before"])

            # The same figures from scikit-learn on the documented split.
            t0 = np.array([rep["thresholds_before"][l] for l in lab], np.float32)
            t1 = np.array([rep["thresholds_after"][l] for l in lab], np.float32)
            fit, held = et.splitmix_split(N_CHIPS, 0.5, seed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UndefinedMetricWarning)
                for key, sel, t in (("f2", list(range(N_CHIPS)), t0), ("f2_before", fit, t0),
                                    ("f2_after", fit, t1), ("f2_heldout_before", held, t0),
                                    ("f2_heldout_after", held, t1)):
                    want = fbeta_score(truth[sel], (P[sel] >= t).astype(int), beta=2,
                                       average="samples")
                    assert abs(rep[key] - want) <= 1e-9, (seed, key, rep[key], want)
        print("mean held-out gain %.4f" % np.mean(gains))
        assert np.mean(gains) > 0, gains


ct.main(test)
