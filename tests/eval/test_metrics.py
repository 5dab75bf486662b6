"""classifier/eval's metrics, threshold optimisation and split against
scikit-learn and an independent implementation of the documented split.

- sample-averaged F2/precision/recall = sklearn fbeta_score / precision_score
  / recall_score (average="samples"), per-label = average=None, on random
  data with chips that have no true and/or no predicted label, labels that
  never occur or are never predicted, and probabilities exactly at the
  threshold (p >= t predicts);
- optimised thresholds: F2 before/after equal sklearn's, never lower, on the
  grid, and no single grid change of one label beats them (checked with
  sklearn); with miscalibrated labels they also raise held-out F2;
- the split equals SplitMix64 + Fisher-Yates written in Python.
"""
import os
import warnings

import numpy as np
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import fbeta_score, precision_score, recall_score

import evaltest as et
from evaltest import ct

TOL = 1e-12


def sk_scores(y, pred):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        return {
            "f2": fbeta_score(y, pred, beta=2, average="samples"),
            "precision": precision_score(y, pred, average="samples"),
            "recall": recall_score(y, pred, average="samples"),
            "f2_l": fbeta_score(y, pred, beta=2, average=None),
            "precision_l": precision_score(y, pred, average=None),
            "recall_l": recall_score(y, pred, average=None),
        }


def predict(probs, thr):
    return (np.asarray(probs, np.float32) >= np.asarray(thr, np.float32)).astype(int)


def random_case(rng, n, L):
    rates = rng.uniform(0.0, 0.6, L)
    rates[0] = 0.0                         # a label that never occurs
    truth = (rng.random((n, L)) < rates).astype(np.uint8)
    thr = rng.uniform(0.05, 0.95, L).astype(np.float32)
    probs = rng.random((n, L)).astype(np.float32)
    if L > 1:
        probs[:, 1] = np.minimum(probs[:, 1], thr[1] * 0.5)  # a label never predicted
    k = n // 8
    truth[:k] = 0                           # no true label ...
    probs[: k // 2] = 0.0                   # ... and none predicted either
    probs[k: 2 * k] = 0.0                   # true labels but no prediction
    # probabilities exactly at the threshold count as predicted
    for i in range(2 * k, 3 * k):
        j = rng.integers(L)
        probs[i, j] = thr[j]
    return truth, probs, thr


def check_metrics(d, truth, probs, thr):
    path = os.path.join(d, "data.txt")
    et.write_data(path, truth, probs, thr)
    _, got = et.probe("metrics", path)
    want = sk_scores(truth, predict(probs, thr))
    for k in ("f2", "precision", "recall"):
        assert abs(got[k] - want[k]) <= TOL, (k, got[k], want[k])
    pred = predict(probs, thr)
    for l, g in enumerate(got["labels"]):
        assert g["support"] == int(truth[:, l].sum()), (l, g)
        assert g["predicted"] == int(pred[:, l].sum()), (l, g)
        assert abs(g["precision"] - want["precision_l"][l]) <= TOL, (l, g, want["precision_l"][l])
        assert abs(g["recall"] - want["recall_l"][l]) <= TOL, (l, g, want["recall_l"][l])
        assert abs(g["f2"] - want["f2_l"][l]) <= TOL, (l, g, want["f2_l"][l])
    return got


def calibrated_case(rng, n, L):
    """Probabilities that carry signal, with label-specific calibration so
    that 0.2 is the wrong threshold for most labels."""
    rates = rng.uniform(0.05, 0.5, L)
    truth = (rng.random((n, L)) < rates).astype(np.uint8)
    shift = rng.uniform(-2.5, 2.5, L)
    logits = np.where(truth, 1.5, -1.5) + rng.normal(0, 1.3, (n, L)) + shift
    probs = (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)
    return truth, probs, np.full(L, 0.2, np.float32)


def check_optimum(d, truth, probs, thr0, rows=None):
    path = os.path.join(d, "opt.txt")
    et.write_data(path, truth, probs, thr0)
    args = ["optimize", path, 0.01, 0.99, 0.01, 10]
    if rows is not None:
        args.append(",".join(map(str, rows)))
    _, got = et.probe(*args)
    sel = np.arange(len(truth)) if rows is None else np.asarray(rows)
    y, p = truth[sel], probs[sel]
    thr = np.asarray(got["thresholds"], np.float32)
    before = sk_scores(y, predict(p, thr0))["f2"]
    after = sk_scores(y, predict(p, thr))["f2"]
    assert abs(got["f2_before"] - before) <= TOL, (got["f2_before"], before)
    assert abs(got["f2_after"] - after) <= TOL, (got["f2_after"], after)
    assert after >= before - TOL, (before, after)
    grid = np.array([np.float32(0.01 + k * 0.01) for k in range(99)], np.float32)
    for l in range(truth.shape[1]):
        assert thr[l] in grid or thr[l] == thr0[l], (l, thr[l])
    # Coordinate-wise optimum: no single-label grid move gains, by sklearn.
    for l in range(truth.shape[1]):
        base = predict(p, thr)
        for t in grid:
            alt = base.copy()
            alt[:, l] = p[:, l] >= t
            f = fbeta_score(y, alt, beta=2, average="samples", zero_division=0)
            assert f <= after + 1e-9, ("label %d threshold %g beats the optimum: %.12f > %.12f"
                                       % (l, t, f, after))
    return got


def test():
    rng = np.random.default_rng(20240611)
    with ct.tmpdir() as d:
        # Metrics on random data of several shapes.
        for n, L in ((1, 3), (2, 2), (7, 3), (64, 17), (300, 17), (500, 5)):
            truth, probs, thr = random_case(rng, n, L)
            check_metrics(d, truth, probs, thr)
        # Degenerate: nothing true and nothing predicted anywhere -> all 0.
        truth = np.zeros((5, 4), np.uint8)
        got = check_metrics(d, truth, np.zeros((5, 4), np.float32), np.full(4, 0.5, np.float32))
        assert got["f2"] == 0.0 and all(g["f2"] == 0.0 for g in got["labels"])
        # Everything right -> 1 (chips with labels only).
        truth = np.eye(6, 6, dtype=np.uint8)
        got = check_metrics(d, truth, truth.astype(np.float32), np.full(6, 0.5, np.float32))
        assert got["f2"] == 1.0

        # Threshold optimisation: an optimum, never worse, equal to sklearn.
        truth, probs, thr0 = calibrated_case(rng, 400, 8)
        got = check_optimum(d, truth, probs, thr0)
        assert got["f2_after"] > got["f2_before"] + 0.02, got
        # Starting off the grid, on a subset of rows.
        rows = sorted(rng.choice(400, 150, replace=False).tolist())
        check_optimum(d, truth, probs, np.full(8, 0.333, np.float32), rows)
        # Random noise as probabilities: nothing to find is fine, never worse.
        truth, probs, thr = random_case(rng, 200, 6)
        check_optimum(d, truth, probs, thr)

        # Fitting on one part raises the F2 of the held-out part when the
        # labels are miscalibrated the same way in both.
        truth, probs, thr0 = calibrated_case(rng, 2000, 17)
        fit, held = et.splitmix_split(2000, 0.3, 7)
        path = os.path.join(d, "split.txt")
        et.write_data(path, truth, probs, thr0)
        _, got = et.probe("optimize", path, 0.01, 0.99, 0.01, 10, ",".join(map(str, fit)))
        thr = np.asarray(got["thresholds"], np.float32)
        h_before = sk_scores(truth[held], predict(probs[held], thr0))["f2"]
        h_after = sk_scores(truth[held], predict(probs[held], thr))["f2"]
        print("held-out F2 %.4f -> %.4f (fit %.4f -> %.4f)"
              % (h_before, h_after, got["f2_before"], got["f2_after"]))
        assert h_after > h_before + 0.02, (h_before, h_after)

        # Bad grids are refused.
        p, _ = et.probe("optimize", path, 0.5, 0.2, 0.01, 10, check=False)
        assert p.returncode == 1 and "grid" in p.stderr, p.stderr
        p, _ = et.probe("optimize", path, 0.0, 1.0, 0.0, 10, check=False)
        assert p.returncode == 1 and "grid" in p.stderr, p.stderr

    # The split: same as the documented algorithm, a partition, seeded.
    for n, frac, seed in ((2, 0.5, 0), (10, 0.2, 1), (1000, 0.25, 42), (40479, 0.1, 2**63 - 1),
                          (7, 0.01, 3), (7, 0.99, 3)):
        _, got = et.probe("split", n, frac, seed)
        fit, held = et.splitmix_split(n, frac, seed)
        assert got["fit"] == fit and got["held"] == held, (n, frac, seed)
        assert sorted(fit + held) == list(range(n))
    _, a = et.probe("split", 1000, 0.25, 1)
    _, b = et.probe("split", 1000, 0.25, 2)
    assert a["held"] != b["held"]
    for bad in (("1", "0.5", "0"), ("10", "0", "0"), ("10", "1", "0")):
        p, _ = et.probe("split", *bad, check=False)
        assert p.returncode == 1, bad

    # canopy.thresholds values: shortest text that reads back as the float.
    vals = ["0.2", "0.15", "0.07", "0.99", "0.01", "1", "0", "0.123456789"]
    p = ct.run([et.PROBE, "thresholds-json"] + vals)
    import json
    arr = json.loads(p.stdout)
    assert [np.float32(v) for v in arr] == [np.float32(float(v)) for v in vals], arr
    assert p.stdout.strip().startswith("[0.2,0.15,0.07,0.99,0.01,1,0,"), p.stdout


ct.main(test)
