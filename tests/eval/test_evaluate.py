"""`canopy evaluate` end to end on a tiny random ResNet (scripts/canopy_models.py)
and chips written with GDAL:

- F2 / per-label precision, recall, F2 in --report equal scikit-learn's on
  `canopy predict --probs` of the same chips and the CSV's labels;
- --tta equals the mean of `canopy predict --probs` over the 8 rotated and
  flipped chips written as files (numpy rot90/flip + GDAL);
- --optimize-thresholds --split: train and held-out F2 before/after equal
  sklearn's on the documented split, training F2 never lower;
- --write-model: only canopy.thresholds changes, and canopy predict with the
  new model tags exactly the labels with p >= the new thresholds;
- missing images, repeated names, unknown tags counted; an unreadable chip
  gives exit 1 with the others still scored; bad CSV, no images, usage
  errors give clear messages and exit 1 / 2 with nothing written.
"""
import csv
import io
import json
import os
import warnings

import numpy as np
import onnx
import torch
from osgeo import gdal
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import fbeta_score, precision_score, recall_score

import canopy_models as cm
import evaltest as et
from evaltest import ct

gdal.UseExceptions()
N_CHIPS, SIZE = 40, 64
LABELS = et.KAGGLE_LABELS


def write_image(path, arr, driver):
    c, h, w = arr.shape
    mem = gdal.GetDriverByName("MEM").Create("", w, h, c, gdal.GDT_Byte)
    for i in range(c):
        mem.GetRasterBand(i + 1).WriteArray(np.ascontiguousarray(arr[i]))
    opts = ["QUALITY=92"] if driver == "JPEG" else []
    gdal.GetDriverByName(driver).CreateCopy(path, mem, options=opts)
    mem = None


def read_image(path):
    ds = gdal.Open(path)
    a = ds.ReadAsArray()
    ds = None
    return a


def predict_probs(model, paths, *extra):
    """{name: probs (L,) float32} from canopy predict --probs."""
    p = ct.canopy("predict", "-m", model, "--probs", *extra, *paths)
    rows = list(csv.reader(io.StringIO(p.stdout)))
    assert rows[0] == ["image_name"] + LABELS, rows[0]
    return {r[0]: np.array([float(v) for v in r[1:]], np.float32) for r in rows[1:]}


def sk(y, pred):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        return (fbeta_score(y, pred, beta=2, average="samples"),
                precision_score(y, pred, average=None), recall_score(y, pred, average=None),
                fbeta_score(y, pred, beta=2, average=None))


def check_scores(what, y, probs, thr, f2, labels_rep):
    pred = (probs >= np.asarray(thr, np.float32)).astype(int)
    f, p, r, fl = sk(y, pred)
    assert abs(f2 - f) <= 1e-9, (what, f2, f)
    for l, name in enumerate(LABELS):
        g = labels_rep[name]
        assert g["support"] == int(y[:, l].sum()), (what, name, g)
        assert abs(g["precision"] - p[l]) <= 1e-9, (what, name, g, p[l])
        assert abs(g["recall"] - r[l]) <= 1e-9, (what, name, g, r[l])
        assert abs(g["f2"] - fl[l]) <= 1e-9, (what, name, g, fl[l])
        assert np.float32(g["threshold"]) == np.float32(thr[l]), (what, name, g)
    return f


def d4(a):
    """The 8 rotations/flips of a (C, H, W) array."""
    out = []
    for base in (a, a[:, :, ::-1]):
        for k in range(4):
            out.append(np.rot90(base, k, axes=(1, 2)))
    return out


def test():
    torch.manual_seed(0)
    rng = np.random.default_rng(11)
    with ct.tmpdir() as d:
        # A tiny fastai-style ResNet with random weights, thresholds at each
        # label's median probability so that predictions are mixed.
        net = cm.randomize(cm.build_model("resnet18", len(LABELS), 3, "fastai1",
                                          widths=[8, 16, 16, 32]), seed=5, size=SIZE)
        raw = cm.random_chips(123, N_CHIPS, 3, SIZE)
        with torch.no_grad():
            tp = torch.sigmoid(net(cm.normalise(raw, 1 / 255, cm.IMAGENET_MEAN,
                                                cm.IMAGENET_STD))).numpy()
        thr0 = [round(float(v), 3) for v in np.median(tp, 0)]
        model = os.path.join(d, "tiny.onnx")
        cm.export_onnx(net, model, SIZE, 3, {"thresholds": thr0, "name": "tiny",
                                             "version": "t1"}, opset=13)

        # Chips as JPEG (the Kaggle layout) and the label file, with a few
        # rows whose image is missing, a repeated name and an unknown tag.
        img = os.path.join(d, "train-jpg")
        os.mkdir(img)
        names = ["train_%d" % i for i in range(N_CHIPS)]
        for i, n in enumerate(names):
            write_image(os.path.join(img, n + ".jpg"), raw[i].numpy(), "JPEG")
        truth = (tp + rng.normal(0, 0.08, tp.shape) > np.median(tp, 0)).astype(np.uint8)
        truth[:4] = 0  # chips without any label
        lines = ["image_name,tags"]
        for i, n in enumerate(names):
            tags = [LABELS[l] for l in range(len(LABELS)) if truth[i, l]]
            if i == 5:
                tags.append("not_a_label")
            lines.append("%s,%s" % (n, " ".join(tags)))
            if i == 10:
                lines.append("train_0,clear primary")       # repeated name: ignored
        lines += ["train_missing_1,clear", "\"train_missing_2\",\"haze primary\"",
                  "train_missing_3,"]
        labels_csv = os.path.join(d, "train_v2.csv")
        with open(labels_csv, "w", newline="") as f:
            f.write("\r\n".join(lines) + "\r\n")

        # Plain probabilities and the 8 transformed chips' probabilities.
        paths = [os.path.join(img, n + ".jpg") for n in names]
        plain = predict_probs(model, paths, "--batch", "7")
        pplain = np.stack([plain[n] for n in names])
        tdir = os.path.join(d, "d4")
        os.mkdir(tdir)
        tpaths = []
        for n, pth in zip(names, paths):
            for k, a in enumerate(d4(read_image(pth))):
                tpaths.append(os.path.join(tdir, "%s_t%d.tif" % (n, k)))
                write_image(tpaths[-1], a, "GTiff")
        tprobs = predict_probs(model, tpaths)
        ptta = np.stack([np.mean([tprobs["%s_t%d" % (n, k)] for k in range(8)], 0)
                         for n in names]).astype(np.float32)
        assert np.abs(ptta - pplain).max() > 1e-3, "TTA makes no difference: test proves little"

        report = os.path.join(d, "report.json")
        out_model = os.path.join(d, "tuned.onnx")
        p = ct.canopy("evaluate", "-m", model, "--labels", labels_csv, "--images", img,
                      "--tta", "--optimize-thresholds", "--split", "0.25", "--seed", "3",
                      "--write-model", out_model, "--report", report, "--batch", "7",
                      "--threads", "2")
        rep = json.load(open(report))
        assert rep["n"] == N_CHIPS and rep["missing_images"] == 3, rep
        assert rep["duplicates"] == 1 and rep["unreadable_images"] == 0, rep
        assert rep["unknown_tags"]["names"] == {"not_a_label": 1}, rep["unknown_tags"]
        assert "3 of the 43 images" in p.stderr and "repeated" in p.stderr, p.stderr
        assert "not_a_label" in p.stderr, p.stderr

        f2 = check_scores("plain", truth, pplain, thr0, rep["f2"], rep["labels"])
        f2t = check_scores("tta", truth, ptta, thr0, rep["f2_tta"], rep["labels_tta"])
        print("tiny model: F2 %.4f, with TTA %.4f" % (f2, f2t))
        assert "chips      %d" % N_CHIPS in p.stdout and "%.4f" % f2 in p.stdout, p.stdout

        # The optimisation, on the TTA probabilities, on the documented split.
        fit, held = et.splitmix_split(N_CHIPS, 0.25, 3)
        assert rep["n_fit"] == len(fit) and rep["n_heldout"] == len(held), rep
        assert rep["optimized_on"] == "tta"
        thr1 = np.array([rep["thresholds_after"][l] for l in LABELS], np.float32)
        for key, rows, t in (("f2_before", fit, thr0), ("f2_after", fit, thr1),
                             ("f2_heldout_before", held, thr0), ("f2_heldout_after", held, thr1)):
            want = sk(truth[rows], (ptta[rows] >= np.asarray(t, np.float32)).astype(int))[0]
            assert abs(rep[key] - want) <= 1e-9, (key, rep[key], want)
        assert rep["f2_after"] >= rep["f2_before"], rep
        check_scores("after", truth[held], ptta[held], thr1, rep["f2_heldout_after"],
                     rep["labels_after"])

        # The written model: only canopy.thresholds differs, and canopy uses it.
        a, b = onnx.load(model), onnx.load(out_model)
        assert a.graph.SerializeToString() == b.graph.SerializeToString()
        assert list(a.opset_import) == list(b.opset_import)
        ma = {e.key: e.value for e in a.metadata_props}
        mb = {e.key: e.value for e in b.metadata_props}
        new = [np.float32(v) for v in json.loads(mb.pop("canopy.thresholds"))]
        ma.pop("canopy.thresholds")
        assert ma == mb and new == list(thr1), (new, thr1)
        old_value = [e.value for e in a.metadata_props if e.key == "canopy.thresholds"][0]
        new_value = [e.value for e in b.metadata_props if e.key == "canopy.thresholds"][0]
        ab, bb = open(model, "rb").read(), open(out_model, "rb").read()
        old_entry = et.entry_bytes("canopy.thresholds", old_value)
        assert ab.count(old_entry) == 1
        assert bb == ab.replace(old_entry, et.entry_bytes("canopy.thresholds", new_value)), \
            "bytes outside the canopy.thresholds entry changed"
        q = ct.canopy("predict", "-m", out_model, *paths)
        got_tags = {r[0]: r[1].split() for r in list(csv.reader(io.StringIO(q.stdout)))[1:]}
        for i, n in enumerate(names):
            want = [LABELS[l] for l in range(len(LABELS)) if pplain[i, l] >= thr1[l]]
            assert got_tags[n] == want, (n, got_tags[n], want)

        # canopy predict --tta agrees with the mean over the transformed files.
        pt = predict_probs(model, paths, "--tta")
        diff = np.abs(np.stack([pt[n] for n in names]) - ptta).max()
        print("predict --tta vs mean of 8 transformed chips: max |diff| %.2e" % diff)
        assert diff <= 1e-5, diff

        # --ext tif: the same chips as GeoTIFF, no split: fit on all.
        tif = os.path.join(d, "train-tif")
        os.mkdir(tif)
        for n, pth in zip(names, paths):
            write_image(os.path.join(tif, n + ".tif"), read_image(pth), "GTiff")
        rep2 = os.path.join(d, "report2.json")
        ct.canopy("evaluate", "-m", model, "--labels", labels_csv, "--images", tif, "--ext",
                  "tif", "--optimize-thresholds", "--report", rep2, "-q")
        r2 = json.load(open(rep2))
        assert abs(r2["f2"] - rep["f2"]) <= 1e-9 and "f2_tta" not in r2, r2
        assert r2["n_fit"] == N_CHIPS and "f2_heldout_after" not in r2
        assert abs(r2["f2_before"] - rep["f2"]) <= 1e-9 and r2["f2_after"] >= r2["f2_before"]

        # An unreadable chip: named, counted, the others scored, exit 1.
        with open(os.path.join(img, "train_7.jpg"), "wb") as f:
            f.write(b"\xff\xd8\xff\xe0 this is not a JPEG")
        rep3 = os.path.join(d, "report3.json")
        p = ct.canopy("evaluate", "-m", model, "--labels", labels_csv, "--images", img,
                      "--report", rep3, check=False)
        assert p.returncode == 1 and "train_7.jpg" in p.stderr, (p.returncode, p.stderr)
        r3 = json.load(open(rep3))
        assert r3["n"] == N_CHIPS - 1 and r3["unreadable_images"] == 1, r3
        keep = [i for i in range(N_CHIPS) if i != 7]
        check_scores("unreadable", truth[keep], pplain[keep], thr0, r3["f2"], r3["labels"])

        # Failures: exit 1 with the file (and line) named, no report.
        bad_csv = os.path.join(d, "bad.csv")
        with open(bad_csv, "w") as f:
            f.write("image_name,tags\ntrain_0,clear\ntrain_1,clear,primary\n")
        rep4 = os.path.join(d, "report4.json")
        for args, words in (
                (["--labels", bad_csv, "--images", tif], [bad_csv + ":3:", "2 fields"]),
                (["--labels", labels_csv, "--images", tif, "--ext", "png"],
                 ["none of the 43 images", "--ext"]),
                (["--labels", labels_csv, "--images", os.path.join(d, "nope")], ["not a folder"]),
                (["--labels", os.path.join(d, "nope.csv"), "--images", tif], ["nope.csv"])):
            p = ct.canopy("evaluate", "-m", model, "--report", rep4, *args, check=False)
            assert p.returncode == 1, (args, p.returncode, p.stderr)
            for w in words:
                assert w in p.stderr, (args, w, p.stderr)
            assert not os.path.exists(rep4), args
        p = ct.canopy("evaluate", "-m", model, "--labels", labels_csv, "--images", tif,
                      "--report", os.path.join(d, "nope", "r.json"), check=False)
        assert p.returncode == 1 and "nope" in p.stderr, p.stderr

        # Usage errors: exit 2.
        for args in ([], ["--labels", labels_csv], ["--images", tif],
                     ["--labels", labels_csv, "--images", tif, "--split", "0.2"],
                     ["--labels", labels_csv, "--images", tif, "--optimize-thresholds",
                      "--split", "1.5"],
                     ["--labels", labels_csv, "--images", tif, "--write-model", out_model],
                     ["--labels", labels_csv, "--images", tif, "--bogus"],
                     ["--labels", labels_csv, "--images", tif, "--batch", "0"],
                     ["--labels", labels_csv, "--images", tif, "--seed", "-1",
                      "--optimize-thresholds", "--split", "0.5"]):
            p = ct.canopy("evaluate", "-m", model, *args, check=False)
            assert p.returncode == 2 and "canopy evaluate:" in p.stderr, (args, p.returncode,
                                                                         p.stderr)
        h = ct.canopy("evaluate", "--help")
        for w in ("--optimize-thresholds", "--split", "--tta", "--write-model", "zero_division",
                  "Exit status"):
            assert w in h.stdout, w
        leftovers = [f for f in os.listdir(d) if ".tmp-" in f]
        assert not leftovers, leftovers


ct.main(test)
