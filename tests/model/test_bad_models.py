"""Bad models and bad chips: `canopy info` and `canopy predict` exit with
status 1 and one message naming the file and what is wrong (the operator
and node, or the metadata key), print no partial CSV, and never die of a
signal. Models are made broken with the onnx package from a valid tiny
ResNet-like export: empty, truncated, random bytes, text, unsupported
operators (Softmax, LSTM, Resize, a custom domain), grouped convolution,
external data, wrong metadata JSON of many kinds, mismatched input
channels, a fixed size that contradicts the metadata, an output that is
not 2-D, an old opset, two inputs, nodes out of order, computed weights.
Also usage errors (status 2) and unreadable chips among good ones.

Set CANOPY_TEST_VALGRIND=1 to run every canopy command under valgrind
(status 99 on an invalid read or write)."""
import copy
import os
import random
import sys

import onnx
from onnx import helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import canopytest as ct  # noqa: E402
import tinymodels as tm  # noqa: E402

VALGRIND = os.environ.get("CANOPY_TEST_VALGRIND") == "1"


def run(*args):
    cmd = [ct.CANOPY] + [str(a) for a in args]
    if VALGRIND:
        cmd = ["valgrind", "-q", "--error-exitcode=99"] + cmd
    return ct.run(cmd, check=False)


def expect_fail(path, what, *needles, predict_chip=None):
    """canopy info PATH (and predict when a chip is given) exits 1 naming
    the file and every needle (case-insensitive); predict prints nothing."""
    cmds = [("info", path)]
    if predict_chip:
        cmds.append(("predict", "-m", path, predict_chip))
    for c in cmds:
        p = run(*c)
        assert p.returncode == 1, "%s: canopy %s exited %d (expected 1)\nstderr: %s" % (
            what, c[0], p.returncode, p.stderr)
        err = p.stderr.strip()
        assert os.path.basename(path) in err, "%s: the message does not name the file: %s" % (
            what, err)
        for n in needles:
            assert n.lower() in err.lower(), "%s: the message does not mention %r: %s" % (
                what, n, err)
        assert len(err.split("\n")) == 1, "%s: more than one message line: %s" % (what, err)
        assert p.stdout == "", "%s: canopy %s printed output: %r" % (what, c[0], p.stdout[:200])
    print("%-34s %s" % (what, err[:150]))


def save(model, d, name):
    path = os.path.join(d, name)
    onnx.save(model, path)
    return path


def node(model, name):
    return [n for n in model.graph.node if n.name == name][0]


def test_bytes(d, base, chip):
    """Empty, truncated, random and text files."""
    data = open(base, "rb").read()
    p = os.path.join(d, "empty.onnx")
    open(p, "wb").close()
    expect_fail(p, "empty file", "empty", predict_chip=chip)
    for i, n in enumerate([1, 7, 64, len(data) // 3, len(data) // 2, len(data) - 1]):
        p = os.path.join(d, "truncated%d.onnx" % i)
        with open(p, "wb") as f:
            f.write(data[:n])
        expect_fail(p, "truncated to %d bytes" % n, predict_chip=chip if i == 3 else None)
    rng = random.Random(5)
    for i, n in enumerate([3, 1000, 70000]):
        p = os.path.join(d, "random%d.onnx" % i)
        with open(p, "wb") as f:
            f.write(bytes(rng.getrandbits(8) for _ in range(n)))
        expect_fail(p, "%d random bytes" % n)
    p = os.path.join(d, "text.onnx")
    with open(p, "w") as f:
        f.write("this is not a model\n")
    expect_fail(p, "text file")
    expect_fail(os.path.join(d, "missing.onnx"), "missing file", "cannot open")


def test_operators(d, base, chip):
    m0 = onnx.load(base)

    m = copy.deepcopy(m0)  # Softmax on the output
    gemm = node(m, "/fc/Gemm")
    gemm.output[0] = "gemm_out"
    m.graph.node.append(helper.make_node("Softmax", ["gemm_out"], ["logits"], name="final_softmax",
                                         axis=1))
    expect_fail(save(m, d, "softmax.onnx"), "Softmax node", "Softmax", "final_softmax",
                predict_chip=chip)

    m = copy.deepcopy(m0)  # an LSTM in place of the Gemm
    g = node(m, "/fc/Gemm")
    lstm = helper.make_node("LSTM", list(g.input), list(g.output), name="the_lstm", hidden_size=17)
    m.graph.node.remove(g)
    m.graph.node.append(lstm)
    expect_fail(save(m, d, "lstm.onnx"), "LSTM node", "LSTM", "the_lstm")

    m = copy.deepcopy(m0)  # Resize in the body
    mp = node(m, "/stem/stem.3/MaxPool")
    m.graph.initializer.append(helper.make_tensor("scales", onnx.TensorProto.FLOAT, [4],
                                                  [1, 1, 2, 2]))
    mp.output[0] = "mp_out"
    m.graph.node.insert(list(m.graph.node).index(mp) + 1, helper.make_node(
        "Resize", ["mp_out", "", "scales"], ["/stem/stem.3/MaxPool_output_0"], name="upsample"))
    expect_fail(save(m, d, "resize.onnx"), "Resize node", "Resize", "upsample")

    m = copy.deepcopy(m0)  # an operator of another domain
    r = node(m, "/Relu")
    r.domain = "com.microsoft"
    r.op_type = "FusedRelu"
    expect_fail(save(m, d, "domain.onnx"), "custom domain", "FusedRelu", "com.microsoft")

    m = copy.deepcopy(m0)  # grouped convolution
    c = node(m, "/c1/Conv")
    for a in c.attribute:
        if a.name == "group":
            a.i = 2
    expect_fail(save(m, d, "grouped.onnx"), "grouped convolution", "group", "/c1/Conv")

    m = copy.deepcopy(m0)  # weights computed by a node
    c = node(m, "/c2/Conv")
    w = c.input[1]
    c.input[1] = "w_relu"
    m.graph.node.insert(0, helper.make_node("Relu", [w], ["w_relu"], name="weight_relu"))
    expect_fail(save(m, d, "computed.onnx"), "computed weights", "weight_relu")

    m = copy.deepcopy(m0)  # nodes out of topological order
    last = m.graph.node[-1]
    m.graph.node.remove(last)
    m.graph.node.insert(0, last)
    expect_fail(save(m, d, "order.onnx"), "nodes out of order", "/fc/Gemm", "not produced")

    m = copy.deepcopy(m0)  # external data
    path = os.path.join(d, "external.onnx")
    onnx.save_model(m, path, save_as_external_data=True, all_tensors_to_one_file=True,
                    location="external.data", size_threshold=0)
    expect_fail(path, "external data", "external")


def test_graph_shapes(d, base, chip):
    m0 = onnx.load(base)

    m = copy.deepcopy(m0)  # declared 4 channels, the first conv takes 3
    m.graph.input[0].type.tensor_type.shape.dim[1].dim_value = 4
    expect_fail(save(m, d, "channels.onnx"), "input channel mismatch", "channels",
                "/stem/stem.0/Conv", predict_chip=chip)

    m = copy.deepcopy(m0)  # output = the pooled (N, 8, 1, 1) features
    for name in ("/fc/Gemm", "/Flatten"):
        m.graph.node.remove(node(m, name))
    node(m, "/pool/GlobalAveragePool").output[0] = "logits"
    expect_fail(save(m, d, "output4d.onnx"), "output not 2-D", "(N, 8, 1, 1)")

    m = copy.deepcopy(m0)  # an opset canopy does not read
    m.opset_import[0].version = 9
    expect_fail(save(m, d, "opset9.onnx"), "opset 9", "opset 9")

    m = copy.deepcopy(m0)  # two inputs
    m.graph.input.append(helper.make_tensor_value_info("mask", onnx.TensorProto.FLOAT,
                                                       [1, 1, 8, 8]))
    expect_fail(save(m, d, "twoinputs.onnx"), "two inputs", "more than one input")

    model = tm.tiny(3, 17, seed=3)
    p = tm.export(model, os.path.join(d, "fixed64.onnx"), 3, size=64, dynamic=False,
                  meta={"canopy.input_size": "96"})
    expect_fail(p, "fixed size != input_size", "canopy.input_size", "fixed")
    p = tm.export(model, os.path.join(d, "fixed24.onnx"), 3, size=24, dynamic=False, meta={})
    p2 = run("predict", "-m", p, chip)
    assert p2.returncode == 1 and "32" in p2.stderr and "fixed24.onnx" in p2.stderr \
        and p2.stdout == "", "input smaller than 32: %d %s" % (p2.returncode, p2.stderr)
    print("%-34s %s" % ("fixed input of 24 px", p2.stderr.strip()[:150]))


BAD_META = [
    ("canopy.labels", '["agriculture", "road"', "not valid JSON"),
    ("canopy.labels", '{"a": 1}', "array"),
    ("canopy.labels", '["road", "water"]', "17 outputs"),
    ("canopy.labels", '["a b"' + ', "x"' * 16 + "]", "spaces"),
    ("canopy.labels", '["road"' + ', "road"' * 16 + "]", "twice"),
    ("canopy.labels", "[1" + ", 2" * 16 + "]", "not a string"),
    ("canopy.thresholds", "[1.5" + ", 0.2" * 16 + "]", "outside"),
    ("canopy.thresholds", "[0.2, 0.3]", "one per label"),
    ("canopy.thresholds", '"0.2"', "array"),
    ("canopy.markers", '["agriculture", "deforestation"]', "deforestation"),
    ("canopy.markers", '"road"', "array"),
    ("canopy.bands", "[0, 1, 2]", "outside"),
    ("canopy.bands", "[1, 2]", "input channel"),
    ("canopy.bands", "[1.5, 2, 3]", "whole number"),
    ("canopy.input_size", "16", "from 32"),
    ("canopy.input_size", "big", "not valid JSON"),
    ("canopy.scale", "-1", "scale"),
    ("canopy.mean", "[0.5, 0.5]", "input channel"),
    ("canopy.std", "[0.2, 0, 0.2]", "outside"),
    ("canopy.gsd_m", "-3", "gsd_m"),
    ("class_names", '{"0": "a", "7": "b"}', "17 outputs"),
    ("standardization_std", "[1, 2]", "input channel"),
]


def test_metadata(d, base, chip):
    for i, (key, value, needle) in enumerate(BAD_META):
        p = tm.set_meta(base, {key: value}, os.path.join(d, "meta%02d.onnx" % i))
        expect_fail(p, "%s=%s" % (key, value[:18]), key, needle,
                    predict_chip=chip if i % 7 == 0 else None)


def test_chips_and_usage(d, base, chip):
    good = tm.write_chips(d, 2, 3, 40, seed=1)[0]
    bad = os.path.join(d, "corrupt.tif")
    with open(good[0], "rb") as f:
        data = f.read()
    with open(bad, "wb") as f:
        f.write(data[:200])  # a TIFF header and nothing else
    missing = os.path.join(d, "nowhere.jpg")
    p = run("predict", "-m", base, good[0], missing, bad, good[1])
    assert p.returncode == 1, "unreadable chips: exit %d, %s" % (p.returncode, p.stderr)
    lines = p.stdout.strip().split("\n")
    assert lines[0] == "image_name,tags" and [ln.split(",")[0] for ln in lines[1:]] == [
        "chip_00", "chip_01"], "the good chips are not all printed in order: %r" % p.stdout
    assert "nowhere.jpg" in p.stderr and "corrupt.tif" in p.stderr, p.stderr
    print("%-34s %s" % ("unreadable chips", " | ".join(p.stderr.strip().split("\n"))[:150]))

    lst = os.path.join(d, "chips.txt")
    with open(lst, "w") as f:
        f.write("%s\n\n%s\n" % (good[1], good[0]))
    p = run("predict", "-m", base, "@" + lst)
    assert p.returncode == 0 and [ln.split(",")[0] for ln in p.stdout.strip().split("\n")[1:]] \
        == ["chip_01", "chip_00"], "@list: %d %r %s" % (p.returncode, p.stdout, p.stderr)
    p = run("predict", "-m", base, "@" + os.path.join(d, "nolist.txt"), good[0])
    assert p.returncode == 1 and "nolist.txt" in p.stderr and "chip_00" in p.stdout, \
        "missing list: %d %s" % (p.returncode, p.stderr)

    for args in (["predict", "--bogus", chip], ["predict", "-m", base], ["predict", "--batch", "0",
                 chip], ["predict", "--threads", "x", chip], ["predict", "-m"],
                 ["info", base, base, base], ["info", "--frobnicate"]):
        p = run(*args)
        assert p.returncode == 2 and p.stdout == "", "usage %s: exit %d" % (args, p.returncode)
        assert "canopy %s" % args[0] in p.stderr, p.stderr
    for cmd in ("predict", "info"):
        p = run(cmd, "--help")
        assert p.returncode == 0 and "Exit status" in p.stdout, "%s --help" % cmd
    print("usage errors: exit 2; --help documents the exit status")


def main():
    with ct.tmpdir() as d:
        base = tm.export(tm.tiny(3, 17, seed=1), os.path.join(d, "base.onnx"), 3,
                         meta={"canopy.input_size": "40"})
        chip = tm.write_chips(d, 1, 3, 40, seed=0)[0][0]
        ok = run("predict", "-m", base, chip)
        assert ok.returncode == 0, "the base model does not run: %s" % ok.stderr
        test_bytes(d, base, chip)
        test_operators(d, base, chip)
        test_graph_shapes(d, base, chip)
        test_metadata(d, base, chip)
        test_chips_and_usage(d, base, chip)


if __name__ == "__main__":
    ct.main(main)
