"""scripts/export-onnx: exports from a PyTorch state dict and from fastai
learn.save() files (v1 and v2 heads), canopy's metadata read back with the
onnx package, the weights in the file are the file's, BatchNorm folded or
kept, and clear errors (exit 1 for bad weights, 2 for usage) that leave no
output behind."""
import json
import os
import sys

import canopy_labels  # scripts/ is on PYTHONPATH
import canopytest as ct

try:
    import numpy as np
    import onnx
    from onnx import numpy_helper
    import torch
    import canopy_models as cm
except ImportError as e:
    print("SKIP: needs %s (Debian: python3-torch python3-torchvision python3-onnx)" % e.name,
          file=sys.stderr)
    sys.exit(ct.SKIP)

EXPORT = ct.script("export-onnx")


def export(*args, check=True):
    return ct.run([ct.PYTHON3, EXPORT] + [str(a) for a in args], check=check)


def props(model):
    return {p.key: p.value for p in model.metadata_props}


def op_counts(model):
    counts = {}
    for n in model.graph.node:
        counts[n.op_type] = counts.get(n.op_type, 0) + 1
    return counts


def initializers(model):
    return [numpy_helper.to_array(t) for t in model.graph.initializer]


def holds(model, tensor):
    """Whether an initializer equals tensor exactly (or its transpose, as
    torch stores Linear weights of a MatMul)."""
    want = tensor.detach().numpy()
    for a in initializers(model):
        if a.shape == want.shape and np.array_equal(a, want):
            return True
        if want.ndim == 2 and a.shape == want.T.shape and np.array_equal(a, want.T):
            return True
    return False


def check_io(model, channels, opset):
    g = model.graph
    assert [i.name for i in g.input] == ["input"], [i.name for i in g.input]
    assert [o.name for o in g.output] == ["probs"], [o.name for o in g.output]
    dims = g.input[0].type.tensor_type.shape.dim
    assert dims[1].dim_value == channels, dims
    for k in (0, 2, 3):  # batch, height and width are dynamic
        assert dims[k].dim_param and not dims[k].dim_value, "input axis %d is fixed: %s" % (k, dims)
    assert g.node[-1].op_type == "Sigmoid" and g.node[-1].output[0] == "probs", \
        "the graph does not end in a Sigmoid giving probs"
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [opset]
    onnx.checker.check_model(model)


def test_state_dict(d):
    """torchvision head, custom labels, thresholds, markers, bands, scale,
    statistics, GSD, opset 11, BatchNorm kept."""
    m = cm.build_model("resnet18", 5, 3, "torchvision")
    cm.randomize(m, 5)
    weights = os.path.join(d, "r18.pth")
    torch.save(m.state_dict(), weights)
    labels_file = os.path.join(d, "labels.txt")
    with open(labels_file, "w") as f:
        f.write("# five classes\nwater\nroad\n\nhabitation\nprimary\ncloudy\n")
    thr_file = os.path.join(d, "thr.json")
    with open(thr_file, "w") as f:
        json.dump({"road": 0.35, "cloudy": 0.6}, f)
    out = os.path.join(d, "r18.onnx")
    p = export("--arch", "resnet18", "--head", "torchvision", "--weights", weights,
               "--labels", labels_file, "--thresholds", thr_file, "--markers", "road,habitation",
               "--bands", "3,2,1", "--scale", "1/10000", "--mean", "0.1,0.2,0.3",
               "--std", "0.4,0.5,0.6", "--gsd", "3", "--input-size", "96", "--name", "r18-test",
               "--version", "1.2", "--opset", "11", "--no-fold-bn", "-o", out)
    assert out in p.stderr, p.stderr
    model = onnx.load(out)
    check_io(model, 3, 11)
    md = props(model)
    assert json.loads(md["canopy.labels"]) == ["water", "road", "habitation", "primary", "cloudy"]
    assert json.loads(md["canopy.thresholds"]) == [0.2, 0.35, 0.2, 0.2, 0.6]
    assert json.loads(md["canopy.markers"]) == ["road", "habitation"]
    assert md["canopy.input_size"] == "96"
    assert json.loads(md["canopy.bands"]) == [3, 2, 1]
    assert float(md["canopy.scale"]) == 1e-4
    assert json.loads(md["canopy.mean"]) == [0.1, 0.2, 0.3]
    assert json.loads(md["canopy.std"]) == [0.4, 0.5, 0.6]
    assert float(md["canopy.gsd_m"]) == 3.0
    assert md["canopy.name"] == "r18-test" and md["canopy.version"] == "1.2"
    assert all(k.startswith("canopy.") for k in md), sorted(md)
    n_bn = sum(1 for x in m.modules() if isinstance(x, torch.nn.BatchNorm2d))
    ops = op_counts(model)
    assert ops.get("BatchNormalization") == n_bn == 20, ops
    sd = m.state_dict()
    for k in ("conv1.weight", "layer3.1.conv2.weight", "bn1.running_var", "fc.weight", "fc.bias"):
        assert holds(model, sd[k]), "%s of the weights file is not in the export" % k


def test_fastai(d):
    """fastai learn.save() files: v2 head (no Linear bias) with every default,
    v1 head (Linear with bias) loaded with --head fastai; BN folded."""
    m = cm.build_model("resnet34", 17, 4, "fastai", widths=[16, 32, 32, 64])
    cm.randomize(m, 6)
    weights = os.path.join(d, "stage-2.pth")
    torch.save({"model": m.state_dict(), "opt": {}}, weights)
    out = os.path.join(d, "planet.onnx")
    export("--arch", "resnet34", "--weights", weights, "--in-channels", "4", "-o", out)
    model = onnx.load(out)
    check_io(model, 4, 13)
    md = props(model)
    assert json.loads(md["canopy.labels"]) == canopy_labels.KAGGLE_LABELS
    assert json.loads(md["canopy.thresholds"]) == [0.2] * 17
    assert json.loads(md["canopy.markers"]) == canopy_labels.DEFAULT_MARKERS
    assert md["canopy.input_size"] == "128"
    assert json.loads(md["canopy.bands"]) == [1, 2, 3, 4]
    assert abs(float(md["canopy.scale"]) - 1 / 255) < 1e-15
    assert json.loads(md["canopy.mean"]) == [0.485, 0.456, 0.406, 0.449]
    assert json.loads(md["canopy.std"]) == [0.229, 0.224, 0.225, 0.226]
    assert "canopy.gsd_m" not in md
    assert md["canopy.name"] == "stage-2"
    ops = op_counts(model)
    # Folded: only the head's two BatchNorm1d stay nodes; no bias -> MatMul.
    assert ops.get("BatchNormalization") == 2 and ops.get("MatMul") == 2 and "Gemm" not in ops, ops
    assert ops.get("GlobalMaxPool") == 1 and ops.get("GlobalAveragePool") == 1, ops
    sd = m.state_dict()
    for k in ("1.2.running_mean", "1.4.weight", "1.6.weight", "1.8.weight"):
        assert holds(model, sd[k]), "%s of the weights file is not in the export" % k
    # conv1 folded with bn1: W * gamma / sqrt(var + eps).
    g = sd["0.1.weight"] / torch.sqrt(sd["0.1.running_var"] + 1e-5)
    folded = (sd["0.0.weight"] * g.view(-1, 1, 1, 1)).numpy()
    assert any(a.shape == folded.shape and np.allclose(a, folded, rtol=1e-5, atol=1e-7)
               for a in initializers(model)), "conv1 folded with bn1 is not in the export"

    # fastai v1: Linear layers with bias; the head type comes from the file.
    m1 = cm.build_model("resnet18", 3, 3, "fastai1")
    cm.randomize(m1, 7)
    w1 = os.path.join(d, "v1.pth")
    torch.save({"model": m1.state_dict(), "opt": {"state": {}, "param_groups": []}}, w1)
    out1 = os.path.join(d, "v1.onnx")
    export("--arch", "resnet18", "--head", "fastai", "--weights", w1, "--opset", "17",
           "--labels", '["a","b","c"]', "--markers", "none", "-o", out1)
    model1 = onnx.load(out1)
    check_io(model1, 3, 17)
    assert op_counts(model1).get("Gemm") == 2, op_counts(model1)
    assert json.loads(props(model1)["canopy.markers"]) == []
    assert holds(model1, m1.state_dict()["1.8.bias"]) and holds(model1, m1.state_dict()["1.4.bias"])


def test_inferred(d):
    """Only --weights: architecture, head, widths, channels and classes come
    from the file (a narrow fastai v1 ResNet saved from DataParallel, without
    the BatchNorm step counters of PyTorch < 0.4.1)."""
    m = cm.build_model("resnet18", 4, 3, "fastai1", widths=[8, 16, 16, 32])
    cm.randomize(m, 8)
    sd = {"module." + k: v for k, v in m.state_dict().items()
          if not k.endswith("num_batches_tracked")}
    weights = os.path.join(d, "narrow.pth")
    torch.save(sd, weights)
    out = os.path.join(d, "narrow.onnx")
    p = export("--weights", weights, "-o", out)
    assert "resnet18, fastai1 head" in p.stderr, p.stderr
    model = onnx.load(out)
    check_io(model, 3, 13)
    md = props(model)
    assert json.loads(md["canopy.labels"]) == ["label_0", "label_1", "label_2", "label_3"]
    assert json.loads(md["canopy.markers"]) == [] and md["canopy.name"] == "narrow"
    assert op_counts(model).get("Gemm") == 2, op_counts(model)
    assert holds(model, m.state_dict()["1.8.weight"]) and holds(model, m.state_dict()["1.8.bias"])


def test_errors(d):
    """Bad weights: exit 1 naming the file and what it holds; usage errors:
    exit 2; never an output file."""
    m = cm.build_model("resnet34", 17, 3, "fastai", widths=[8, 16, 16, 32])
    weights = os.path.join(d, "r34.pth")
    torch.save({"model": m.state_dict(), "opt": {}}, weights)
    out = os.path.join(d, "never.onnx")

    p = export("--arch", "resnet50", "--weights", weights, "-o", out, check=False)
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert weights in p.stderr and "--arch resnet34" in p.stderr, p.stderr
    assert "--widths 8,16,16,32" in p.stderr, p.stderr
    assert "Traceback" not in p.stderr, p.stderr

    p = export("--arch", "resnet34", "--head", "torchvision", "--weights", weights, "-o", out,
               check=False)
    assert p.returncode == 1 and "fastai" in p.stderr and weights in p.stderr, p.stderr

    p = export("--arch", "resnet34", "--weights", weights, "--in-channels", "4", "-o", out,
               check=False)
    assert p.returncode == 1 and "0.0.weight" in p.stderr and "3 input channels" in p.stderr, \
        p.stderr

    junk = os.path.join(d, "junk.pth")
    with open(junk, "wb") as f:
        f.write(b"PK\x03\x04 this is no weights file" * 8)
    p = export("--arch", "resnet18", "--weights", junk, "-o", out, check=False)
    assert p.returncode == 1 and junk in p.stderr and "Traceback" not in p.stderr, p.stderr

    notsd = os.path.join(d, "list.pth")
    torch.save([1, 2, 3], notsd)
    p = export("--arch", "resnet18", "--weights", notsd, "-o", out, check=False)
    assert p.returncode == 1 and notsd in p.stderr and "state dict" in p.stderr, p.stderr

    p = export("--arch", "resnet18", "--weights", os.path.join(d, "missing.pth"), "-o", out,
               check=False)
    assert p.returncode == 1 and "missing.pth" in p.stderr, p.stderr

    for args in (["--arch", "resnet18", "--random-weights", "--opset", "9"],
                 ["--arch", "resnet18", "--random-weights", "--thresholds", "1.5"],
                 ["--arch", "resnet18", "--random-weights", "--classes", "3", "--labels", "a,b"],
                 ["--arch", "resnet18", "--random-weights", "--markers", "nosuchlabel"],
                 ["--arch", "resnet18", "--random-weights", "--mean", "0.1,0.2"],
                 ["--arch", "resnet18", "--random-weights", "--input-size", "16"],
                 ["--random-weights"],
                 ["--arch", "resnet18"]):
        p = export(*(args + ["-o", out]), check=False)
        assert p.returncode == 2, (args, p.returncode, p.stderr)
        assert "Traceback" not in p.stderr and p.stderr.strip(), (args, p.stderr)
    p = export("--arch", "resnet18", "--random-weights", check=False)
    assert p.returncode == 2, p.stderr
    assert not os.path.exists(out), "a failed export left %s" % out
    leftovers = [f for f in os.listdir(d) if f.endswith(".tmp")]
    assert not leftovers, leftovers


def test_random(d):
    """--random-weights: deterministic from --seed, different across seeds."""
    a, b, c = (os.path.join(d, n) for n in ("a.onnx", "b.onnx", "c.onnx"))
    for path, seed in ((a, 1), (b, 1), (c, 2)):
        export("--arch", "resnet18", "--widths", "8,16,16,32", "--random-weights", "--seed", seed,
               "--input-size", "64", "-q", "-o", path)
    ia, ib, ic = (initializers(onnx.load(p)) for p in (a, b, c))
    assert len(ia) == len(ib) and all(np.array_equal(x, y) for x, y in zip(ia, ib))
    assert not all(np.array_equal(x, y) for x, y in zip(ia, ic))


def main():
    with ct.tmpdir() as d:
        test_state_dict(d)
        test_fastai(d)
        test_inferred(d)
        test_errors(d)
        test_random(d)


if __name__ == "__main__":
    ct.main(main)
