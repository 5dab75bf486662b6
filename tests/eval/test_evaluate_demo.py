"""`canopy evaluate --optimize-thresholds --split` with the demo model on demo
chips it was not trained on (scripts/make-demo-data, a seed of its own):
the thresholds fitted on half the chips raise the F2 of the other half, and
never lower the F2 of the half they were fitted on. The F2 figures are
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
        report = os.path.join(d, "report.json")
        p = ct.canopy("evaluate", "-m", model, "--labels", labels, "--images", images,
                      "--optimize-thresholds", "--split", "0.5", "--seed", "1",
                      "--report", report, "-q")
        rep = json.load(open(report))
        print(p.stdout)
        assert rep["n"] == N_CHIPS and rep["missing_images"] == 0, rep
        assert rep["f2_after"] >= rep["f2_before"], (rep["f2_before"], rep["f2_after"])
        assert rep["f2_heldout_after"] > rep["f2_heldout_before"], \
            (rep["f2_heldout_before"], rep["f2_heldout_after"])

        # The same figures from canopy predict --probs and scikit-learn.
        rows = list(csv.reader(open(labels, newline="")))[1:]
        names = [r[0] for r in rows]
        lab = list(rep["labels"])
        truth = np.array([[t in r[1].split() for t in lab] for r in rows], np.uint8)
        q = ct.canopy("predict", "-m", model, "--probs",
                      *[os.path.join(images, n + ".jpg") for n in names])
        out = list(csv.reader(io.StringIO(q.stdout)))
        assert out[0][1:] == lab, out[0]
        probs = {r[0]: [float(v) for v in r[1:]] for r in out[1:]}
        P = np.array([probs[n] for n in names], np.float32)
        t0 = np.array([rep["thresholds_before"][l] for l in lab], np.float32)
        t1 = np.array([rep["thresholds_after"][l] for l in lab], np.float32)
        fit, held = et.splitmix_split(N_CHIPS, 0.5, 1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UndefinedMetricWarning)
            for key, sel, t in (("f2", list(range(N_CHIPS)), t0), ("f2_before", fit, t0),
                                ("f2_after", fit, t1), ("f2_heldout_before", held, t0),
                                ("f2_heldout_after", held, t1)):
                want = fbeta_score(truth[sel], (P[sel] >= t).astype(int), beta=2,
                                   average="samples")
                assert abs(rep[key] - want) <= 1e-9, (key, rep[key], want)


ct.main(test)
