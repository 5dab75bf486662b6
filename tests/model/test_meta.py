"""canopy's model metadata: defaults (17 outputs -> the Kaggle labels,
threshold 0.2, the deforestation markers, ImageNet statistics, 0.449/0.226
for a 4th channel, input size 224), explicit canopy.* keys round-tripping
through `canopy info --json`, Deepness-style fallback keys, canopy.* keys
winning over them, a fixed-size export, and -- the behaviour that matters --
`canopy predict` reading chips as the metadata says (bands, scale,
mean/std, input size, thresholds) against PyTorch on the same weights and
the same normalisation written out independently here."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import canopytest as ct  # noqa: E402
import tinymodels as tm  # noqa: E402

TOL = 1e-4


def info_json(path):
    out = ct.canopy("info", "--json", path)
    return json.loads(out.stdout)


def close(a, b, tol=1e-6):
    return len(a) == len(b) and all(abs(x - y) <= tol * max(1.0, abs(y)) for x, y in zip(a, b))


def check_predict(model, path, d, arrays_paths, bands, scale, mean, std, what):
    paths, arrays = arrays_paths
    out = ct.canopy("predict", "-m", path, "--probs", "--batch", "3", *paths)
    head, names, got = tm.parse_probs(out.stdout)
    ref = tm.torch_probs(model, arrays, bands, scale, mean, std)
    assert names == [os.path.splitext(os.path.basename(p))[0] for p in paths], names
    err = abs(got - ref).max()
    assert err <= TOL, "%s: max|p_canopy - p_torch| = %.3g" % (what, err)
    # the check is meaningful only if the probabilities are spread
    assert ref.max() - ref.min() > 0.05, "%s: degenerate reference" % what
    print("%s: predict max|p - p_torch| = %.2g" % (what, err))
    return head, ref


def test_defaults_kaggle(d):
    """No metadata, 17 outputs, 3 channels: everything defaulted."""
    model = tm.tiny(3, 17, seed=1)
    path = tm.export(model, os.path.join(d, "plain17.onnx"), 3, meta={})
    j = info_json(path)
    md = j["metadata"]
    assert md["labels"] == tm.KAGGLE, md["labels"]
    assert md["thresholds"] == [0.2] * 17 or close(md["thresholds"], [0.2] * 17), md["thresholds"]
    assert md["markers"] == tm.MARKERS, md["markers"]
    assert md["input_size"] == 224 and md["bands"] == [1, 2, 3], md
    assert close([md["scale"]], [1 / 255.0]), md["scale"]
    assert close(md["mean"], tm.IMAGENET_MEAN) and close(md["std"], tm.IMAGENET_STD), md
    assert md["name"] == "plain17", md["name"]
    assert sorted(md["defaulted"]) == sorted(["labels", "thresholds", "markers", "input_size",
                                              "bands", "scale", "mean", "std"]), md["defaulted"]
    # the text output marks defaults
    text = ct.canopy("info", path).stdout
    assert "(default)" in text and "agriculture" in text and "224" in text, text
    # predict reads chips at 224 with the ImageNet statistics
    chips = tm.write_chips(d, 3, 3, 224, seed=2)
    head, _ = check_predict(model, path, d, chips, [1, 2, 3], 1 / 255.0, tm.IMAGENET_MEAN,
                            tm.IMAGENET_STD, "defaults, 17 outputs")
    assert head == tm.KAGGLE, head


def test_defaults_other_count(d):
    """No metadata, 5 outputs, 4 channels: label_0..4, no markers, the
    4th channel's statistics 0.449/0.226."""
    model = tm.tiny(4, 5, seed=3)
    path = tm.export(model, os.path.join(d, "plain5.onnx"), 4, size=48, meta={})
    md = info_json(path)["metadata"]
    assert md["labels"] == ["label_%d" % i for i in range(5)], md["labels"]
    assert md["markers"] == [] and md["bands"] == [1, 2, 3, 4], md
    mean = tm.IMAGENET_MEAN + [0.449]
    std = tm.IMAGENET_STD + [0.226]
    assert close(md["mean"], mean) and close(md["std"], std), md
    chips = tm.write_chips(d, 3, 4, 224, seed=4)
    check_predict(model, path, d, chips, [1, 2, 3, 4], 1 / 255.0, mean, std,
                  "defaults, 4 channels")


def test_explicit(d):
    """Every canopy.* key given: info reports them exactly, nothing is
    defaulted, and predict uses the bands, scale, statistics, size and
    thresholds."""
    labels = ["water", "road", "haze", "primary", "cloudy", "slash_burn"]
    thresholds = [0.1, 0.35, 0.5, 0.65, 0.9, 0.45]
    meta = {
        "canopy.labels": json.dumps(labels),
        "canopy.thresholds": json.dumps(thresholds),
        "canopy.markers": json.dumps(["road", "slash_burn"]),
        "canopy.input_size": "40",
        "canopy.bands": "[3, 1, 4]",
        "canopy.scale": "0.001",
        "canopy.mean": "[0.3, 0.4, 0.5]",
        "canopy.std": "[0.2, 0.25, 0.3]",
        "canopy.gsd_m": "3.0",
        "canopy.name": "tiny explicit",
        "canopy.version": "2.1",
    }
    model = tm.tiny(3, 6, seed=5)
    path = tm.export(model, os.path.join(d, "explicit.onnx"), 3, meta=meta)
    md = info_json(path)["metadata"]
    assert md["labels"] == labels and close(md["thresholds"], thresholds), md
    assert md["markers"] == ["road", "slash_burn"], md["markers"]
    assert md["input_size"] == 40 and md["bands"] == [3, 1, 4], md
    assert close([md["scale"]], [0.001]) and close([md["gsd_m"]], [3.0]), md
    assert close(md["mean"], [0.3, 0.4, 0.5]) and close(md["std"], [0.2, 0.25, 0.3]), md
    assert md["name"] == "tiny explicit" and md["version"] == "2.1", md
    assert md["defaulted"] == [], md["defaulted"]
    # 4-band UInt16 chips at the model's size
    chips = tm.write_chips(d, 5, 4, 40, seed=6, dtype=tm.np.uint16, hi=1000)
    head, ref = check_predict(model, path, d, chips, [3, 1, 4], 0.001, [0.3, 0.4, 0.5],
                              [0.2, 0.25, 0.3], "explicit metadata")
    assert head == labels, head
    # tags at each label's own threshold
    out = ct.canopy("predict", "-m", path, *chips[0])
    lines = out.stdout.strip().split("\n")
    assert lines[0] == "image_name,tags", lines[0]
    n_on = 0
    for i, ln in enumerate(lines[1:]):
        name, tags = ln.split(",")
        tags = tags.split()
        for j, lab in enumerate(labels):
            if abs(ref[i][j] - thresholds[j]) <= TOL:
                continue
            assert (lab in tags) == (ref[i][j] >= thresholds[j]), \
                "%s: %s p=%.5f threshold %.2f tags %s" % (name, lab, ref[i][j], thresholds[j], tags)
        n_on += len(tags)
    assert 0 < n_on < 5 * len(labels), "degenerate tags (%d)" % n_on


def test_deepness(d):
    """Deepness keys as the fallback: class_names as an object and as an
    array, resolution in cm/px, standardization_mean/std, tile_size; the
    canopy.* key wins when both are present."""
    model = tm.tiny(3, 3, seed=7)
    path = tm.export(model, os.path.join(d, "deep.onnx"), 3, meta={
        "class_names": json.dumps({"0": "forest", "2": "road", "1": "field"}),
        "resolution": "50",
        "standardization_mean": "[0.1, 0.2, 0.3]",
        "standardization_std": "[0.5, 0.6, 0.7]",
        "tile_size": "48",
        "model_type": "Segmentor",
    })
    md = info_json(path)["metadata"]
    assert md["labels"] == ["forest", "field", "road"], md["labels"]
    assert close([md["gsd_m"]], [0.5]) and md["input_size"] == 48, md
    assert close(md["mean"], [0.1, 0.2, 0.3]) and close(md["std"], [0.5, 0.6, 0.7]), md
    assert "labels" not in md["defaulted"] and "mean" not in md["defaulted"], md["defaulted"]
    assert "thresholds" in md["defaulted"] and "scale" in md["defaulted"], md["defaulted"]
    assert md["markers"] == ["road"], md["markers"]
    chips = tm.write_chips(d, 3, 3, 48, seed=8)
    check_predict(model, path, d, chips, [1, 2, 3], 1 / 255.0, [0.1, 0.2, 0.3],
                  [0.5, 0.6, 0.7], "Deepness keys")

    tm.set_meta(path, {"class_names": '["a", "b", "c"]', "canopy.labels": '["x", "y", "z"]',
                       "canopy.input_size": "64", "tile_size": "48",
                       "canopy.mean": "[0.4, 0.4, 0.4]", "standardization_mean": "[0, 0, 0]"})
    md = info_json(path)["metadata"]
    assert md["labels"] == ["x", "y", "z"] and md["input_size"] == 64, md
    assert close(md["mean"], [0.4, 0.4, 0.4]), md["mean"]
    tm.set_meta(path, {"class_names": '["a", "b", "c"]'})
    assert info_json(path)["metadata"]["labels"] == ["a", "b", "c"]


def test_fixed_size(d):
    """A fixed-size export: its size is the input size (not a default)."""
    model = tm.tiny(3, 17, seed=9)
    path = tm.export(model, os.path.join(d, "fixed.onnx"), 3, size=64, dynamic=False, meta={})
    md = info_json(path)["metadata"]
    assert md["input_size"] == 64 and "input_size" not in md["defaulted"], md
    chips = tm.write_chips(d, 2, 3, 64, seed=10)
    check_predict(model, path, d, chips, [1, 2, 3], 1 / 255.0, tm.IMAGENET_MEAN,
                  tm.IMAGENET_STD, "fixed-size export")


def main():
    with ct.tmpdir() as d:
        test_defaults_kaggle(d)
        test_defaults_other_count(d)
        test_explicit(d)
        test_deepness(d)
        test_fixed_size(d)


if __name__ == "__main__":
    ct.main(main)
