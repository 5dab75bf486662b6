"""`canopy calibrate` and the engine's observation behind it.

- The ranges it records against PyTorch: forward pre-hooks on every Conv2d
  of the same weights, over the same chips normalised as the metadata says
  (written out here), the k-th Conv2d call matched to the k-th ONNX Conv
  node, whose input names the tensor; one range per tensor, min <= 0 <= max.
  Also with --max-chips (which chips it picks), @LIST, an unreadable chip
  among good ones, and the engine alone (calibrate-probe engine: a second
  observation must forget the first and see only its own chips).
- The copy differs from the model only in the canopy.int8 entry: bytes,
  and every other field through the onnx package; a second calibration
  replaces the entry; fp32 probabilities are unchanged.
- Bad input: no --write-model, the model itself (also through a link), a
  folder, an unwritable folder, no readable chip, malformed canopy.int8
  (bad JSON, version 2, min > 0, NaN, a repeated or unknown tensor, chips 0,
  no activations): the documented exit status and one clear message.
- The library (calibrate-probe lib): the result object, progress, cancel.
"""
import json
import os
import sys

import numpy as np
import onnx

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import canopytest as ct  # noqa: E402
import onnxbytes  # noqa: E402  (tests/lib/)
import tinymodels as tm  # noqa: E402

import torch  # noqa: E402  (after GDAL, which tinymodels loads)

torch.set_num_threads(1)

KEY = "canopy.int8"
RTOL = 1e-4
SIZE = 32
PROBE = os.path.join(ct.BUILDDIR, "tests", "model", "calibrate-probe")


def conv_input_names(path):
    """The input tensor of each ONNX Conv node, in graph order."""
    return [n.input[0] for n in onnx.load(path).graph.node if n.op_type == "Conv"]


def torch_ranges(rt, x):
    """The reference: (name, min, max) per tensor a convolution reads, from
    forward pre-hooks on rt's Conv2d modules over x (n, C, S, S) in one
    batch; names from the ONNX file by order of the convolutions."""
    seen = []
    hooks = [m.register_forward_pre_hook(
        lambda mod, inp: seen.append((float(inp[0].min()), float(inp[0].max()))))
        for m in rt.model.modules() if isinstance(m, torch.nn.Conv2d)]
    try:
        rt.probs(x)
    finally:
        for h in hooks:
            h.remove()
    names = conv_input_names(rt.path)
    assert len(seen) == len(names), "%d Conv2d calls, %d ONNX Conv nodes" % (len(seen),
                                                                              len(names))
    ranges = {}
    for name, (lo, hi) in zip(names, seen):
        a, b = ranges.get(name, (0.0, 0.0))
        ranges[name] = (min(a, lo), max(b, hi))
    return [(n, lo, hi) for n, (lo, hi) in ranges.items()]  # first-seen order


def check_ranges(got, ref, what):
    """got: a canopy.int8 value (string); ref: torch_ranges()."""
    j = json.loads(got)
    assert j["version"] == 1, (what, j)
    acts = j["activations"]
    assert [a["tensor"] for a in acts] == [r[0] for r in ref], \
        (what, [a["tensor"] for a in acts], [r[0] for r in ref])
    worst = 0.0
    for a, (name, lo, hi) in zip(acts, ref):
        assert a["min"] <= 0 <= a["max"], (what, a)
        for g, r in ((a["min"], lo), (a["max"], hi)):
            err = abs(g - r) / max(1.0, abs(r))
            worst = max(worst, err)
            assert err <= RTOL, "%s: %s: canopy %r, PyTorch %r" % (what, name, g, r)
    # meaningful only when the ranges are spread and differ between tensors
    assert len({round(r[2], 3) for r in ref}) >= 3 and min(r[1] for r in ref) < -0.5, ref
    print("%s: %d tensors, worst relative difference %.2g" % (what, len(acts), worst))
    return j


def normalised(rt, arrays):
    return np.stack([rt.normalise(a) for a in arrays]).astype(np.float32)


def int8_value(path):
    vals = [e.value for e in onnx.load(path).metadata_props if e.key == KEY]
    assert len(vals) == 1, (path, vals)
    return vals[0]


def without_int8(path):
    m = onnx.load(path)
    keep = [(e.key, e.value) for e in m.metadata_props if e.key != KEY]
    del m.metadata_props[:]
    for k, v in keep:
        e = m.metadata_props.add()
        e.key, e.value = k, v
    return m


def one_line(p):
    err = p.stderr.strip()
    assert err and "\n" not in err, "expected one message line, got %r" % p.stderr
    return err


def test_ranges_and_copy(d, rt, paths, arrays):
    out = os.path.join(d, "calibrated.onnx")
    p = ct.canopy("calibrate", rt.path, "--write-model", out, "--batch", "4", "--threads", "2",
                  *paths)
    ref = torch_ranges(rt, normalised(rt, arrays))
    value = int8_value(out)
    j = check_ranges(value, ref, "10 chips, batches of 4")
    assert j["chips"] == len(paths), j["chips"]
    n_conv = len(conv_input_names(rt.path))
    assert len(ref) < n_conv, "the model should have convolutions sharing an input"
    summary = p.stdout.strip()
    assert summary.startswith(out + ": calibrated on 10 chips") and \
        ("%d activation ranges for %d convolutions" % (len(ref), n_conv)) in summary, summary

    # the copy: the input's bytes with one entry appended, nothing else
    a, b = open(rt.path, "rb").read(), open(out, "rb").read()
    assert b == a + onnxbytes.entry_bytes(KEY, value), "bytes outside the entry differ"
    ma, mb = onnx.load(rt.path), without_int8(out)
    assert ma.SerializeToString() == mb.SerializeToString(), "models differ beyond canopy.int8"
    assert [x.SerializeToString() for x in ma.graph.initializer] == \
        [x.SerializeToString() for x in onnx.load(out).graph.initializer]
    onnx.checker.check_model(onnx.load(out))

    # canopy reads back what it wrote, and runs the copy as the model in fp32
    info = json.loads(ct.canopy("info", "--json", out).stdout)["metadata"]["int8"]
    assert info == {"chips": 10, "activations": j["activations"]}, info
    assert json.loads(ct.canopy("info", "--json", rt.path).stdout)["metadata"]["int8"] is None
    pa = ct.canopy("predict", "-m", rt.path, "--probs", *paths).stdout
    pb = ct.canopy("predict", "-m", out, "--probs", *paths).stdout
    assert pa == pb, "fp32 probabilities changed"

    # calibrating the copy again replaces its entry (with -q: nothing printed)
    again = os.path.join(d, "again.onnx")
    p = ct.canopy("calibrate", "-q", out, "--write-model", again, paths[0])
    assert p.stdout == "" and p.stderr == "", (p.stdout, p.stderr)
    v2 = int8_value(again)
    check_ranges(v2, torch_ranges(rt, normalised(rt, arrays[:1])), "recalibrated on 1 chip")
    assert v2 != value
    assert open(again, "rb").read() == b.replace(onnxbytes.entry_bytes(KEY, value),
                                                 onnxbytes.entry_bytes(KEY, v2))
    return out


def test_selection(d, rt, paths, arrays):
    """--max-chips 3 of 10: chips 0, 3, 6 (i * 10 / 3); @LIST as input."""
    lst = os.path.join(d, "chips.txt")
    with open(lst, "w") as f:
        f.write("# calibration chips\n\n" + "\n".join(paths) + "\n")
    out = os.path.join(d, "three.onnx")
    p = ct.canopy("calibrate", rt.path, "--write-model", out, "--max-chips", "3", "@" + lst)
    assert "(3 of 10 listed, --max-chips)" in p.stdout, p.stdout
    j = check_ranges(int8_value(out), torch_ranges(rt, normalised(rt, [arrays[i] for i in
                                                                          (0, 3, 6)])),
                     "--max-chips 3")
    assert j["chips"] == 3
    full = torch_ranges(rt, normalised(rt, arrays))
    assert any(abs(a["max"] - r[2]) > 1e-3 for a, r in zip(j["activations"], full)), \
        "the chosen chips should give other ranges than all ten"


def test_unreadable_chip(d, rt, paths, arrays):
    bad = os.path.join(d, "broken.tif")
    with open(bad, "wb") as f:
        f.write(b"II*\x00 not a tiff")
    out = os.path.join(d, "partial.onnx")
    p = ct.canopy("calibrate", rt.path, "--write-model", out, paths[0], bad, *paths[1:4],
                  check=False)
    assert p.returncode == 1, (p.returncode, p.stderr)
    lines = [ln for ln in p.stderr.splitlines() if "broken.tif" in ln]
    assert len(lines) == 1 and lines[0].startswith("canopy calibrate: " + bad), p.stderr
    assert "calibrated on the other 4" in p.stderr, p.stderr
    j = check_ranges(int8_value(out), torch_ranges(rt, normalised(rt, arrays[:4])),
                     "4 good chips and a broken one")
    assert j["chips"] == 4

    # nothing readable: exit 1, nothing written
    none = os.path.join(d, "none.onnx")
    p = ct.canopy("calibrate", "-q", rt.path, "--write-model", none, bad, check=False)
    assert p.returncode == 1 and not os.path.exists(none), (p.returncode, p.stderr)
    assert "the chip could not be read" in p.stderr and len(p.stderr.splitlines()) == 2, \
        p.stderr


def test_usage(d, rt, paths):
    out = os.path.join(d, "u.onnx")
    cases = [
        ([rt.path, paths[0]], "--write-model OUT.onnx is required"),
        ([rt.path, "--write-model", rt.path, paths[0]], "is the model itself"),
        ([rt.path, "--write-model", d, paths[0]], "is a folder"),
        (["--write-model", out], "no model given"),
        ([rt.path, "--write-model", out], "no chips given"),
        ([rt.path, "--write-model", out, "--max-chips", "0", paths[0]], "--max-chips"),
        ([rt.path, "--write-model", out, "--bogus", paths[0]], "unknown option '--bogus'"),
    ]
    link = os.path.join(d, "link.onnx")
    os.symlink(rt.path, link)
    cases.append(([rt.path, "--write-model", link, paths[0]], "is the model itself"))
    before = open(rt.path, "rb").read()
    for args, want in cases:
        p = ct.canopy("calibrate", *args, check=False)
        msg = one_line(p)
        assert p.returncode == 2 and want in msg and "canopy calibrate --help" in msg, \
            (args, p.returncode, msg)
    assert open(rt.path, "rb").read() == before and not os.path.exists(out)
    assert os.path.islink(link)

    # I/O: an output folder that does not exist, a model that does not
    p = ct.canopy("calibrate", rt.path, "--write-model", os.path.join(d, "no", "x.onnx"),
                  paths[0], check=False)
    assert p.returncode == 1 and "cannot write the calibrated model there" in one_line(p), \
        p.stderr
    p = ct.canopy("calibrate", os.path.join(d, "nosuch.onnx"), "--write-model", out, paths[0],
                  check=False)
    assert p.returncode == 1 and "cannot open the model" in one_line(p), p.stderr
    assert ct.canopy("calibrate", "--help").stdout.startswith("Usage: canopy calibrate")
    assert "calibrate" in ct.canopy("--help").stdout


def test_bad_metadata(d, rt, calibrated, paths):
    good = json.loads(int8_value(calibrated))
    t0 = good["activations"][0]["tensor"]

    def variant(**kw):
        v = dict(good)
        v.update(kw)
        return json.dumps(v)

    cases = [
        ("json", '{"version": 1, "chips": 3, "activations": [', "is not valid JSON"),
        ("array", "[1, 2]", "expected a JSON object"),
        ("version", variant(version=2), '"version" is 2; this canopy reads version 1'),
        ("noversion", json.dumps({"chips": 3, "activations": good["activations"]}),
         '"version" is missing'),
        ("minpos", variant(activations=[{"tensor": t0, "min": 0.5, "max": 2.0}]),
         "must hold 0"),
        ("maxneg", variant(activations=[{"tensor": t0, "min": -1.0, "max": -0.5}]),
         "must hold 0"),
        ("nan", variant(activations=[]).replace("[]", '[{"tensor": "%s", "min": NaN, '
                                                      '"max": 1}]' % t0),
         '"min" and "max" must be finite numbers'),
        ("string", variant(activations=[{"tensor": t0, "min": "-1", "max": 1}]),
         "must be finite numbers"),
        ("dup", variant(activations=[good["activations"][0], good["activations"][0]]),
         "has two ranges"),
        ("emptyname", variant(activations=[{"tensor": "", "min": -1, "max": 1}]),
         "tensor name is empty"),
        ("unknown", variant(activations=[{"tensor": "no_such_tensor", "min": -1, "max": 1}]),
         "'no_such_tensor' is not an activation of this model"),
        ("chips0", variant(chips=0), '"chips" must be'),
        ("chipsfrac", variant(chips=2.5), '"chips" must be'),
        ("noacts", variant(activations=[]), '"activations" has 0 entries'),
    ]
    for name, value, want in cases:
        m = onnx.load(calibrated)
        for e in m.metadata_props:
            if e.key == KEY:
                e.value = value
        path = os.path.join(d, "bad-%s.onnx" % name)
        onnx.save(m, path)
        for cmd in (["calibrate", path, "--write-model", os.path.join(d, "o.onnx"), paths[0]],
                    ["predict", "-m", path, paths[0]]):
            p = ct.canopy(*cmd, check=False)
            msg = one_line(p)
            assert p.returncode == 1, (name, cmd[0], p.returncode, msg)
            assert ("%s: metadata 'canopy.int8': " % path) in msg and want in msg, \
                (name, cmd[0], msg)
        assert not os.path.exists(os.path.join(d, "o.onnx"))
    print("bad canopy.int8: %d cases refused with one message each" % len(cases))


def test_engine(d, rt):
    """Observation restarted forgets the first chips; statuses before any
    pass and after stopping."""
    rng = np.random.default_rng(5)
    a = (rng.normal(size=(4, 3, SIZE, SIZE)) * 40.0).astype(np.float32)
    b = rng.normal(size=(2, 3, SIZE, SIZE)).astype(np.float32)
    fa, fb = os.path.join(d, "a.f32"), os.path.join(d, "b.f32")
    a.tofile(fa)
    b.tofile(fb)
    p = ct.run([PROBE, "engine", rt.path, str(SIZE), fa, "4", fb, "2"])
    out = dict(ln.split("=", 1) for ln in p.stdout.splitlines())
    assert out["never_on"] == out["no_pass"] == out["off"] == "usage", out
    j = check_ranges(out["json"], torch_ranges(rt, b), "engine: 2 chips after 4 forgotten")
    wide = torch_ranges(rt, np.concatenate([a, b]))
    assert any(abs(x["max"] - r[2]) > 1.0 for x, r in zip(j["activations"], wide))


def test_library(d, rt, paths):
    out = os.path.join(d, "lib.onnx")
    p = ct.run([PROBE, "lib", rt.path, out] + paths[:5])
    r = dict(ln.split("=", 1) for ln in p.stdout.splitlines() if not ln.startswith("error="))
    assert r["status"] == "ok" and r["message"] == "", r
    assert (r["listed"], r["selected"], r["n"], r["n_failed"]) == ("5", "5", "5", "0"), r
    assert r["json"] == int8_value(out), r
    assert int(r["n_tensors"]) == len(json.loads(r["json"])["activations"])
    assert int(r["n_conv"]) == len(conv_input_names(rt.path)), r
    # batches of 3: the first call, then one per batch, ending at 1
    assert r["progress_calls"] == "3" and float(r["progress_last"]) == 1.0, r
    assert r["progress_backwards"] == "0", r
    assert r["progress_first"] == "calibrating on 5 chips with %s" % rt.path, r

    cancelled = os.path.join(d, "cancelled.onnx")
    p = ct.run([PROBE, "lib", rt.path, cancelled, "--cancel"] + paths[:5])
    r = dict(ln.split("=", 1) for ln in p.stdout.splitlines())
    assert r["status"] == "cancelled" and r["progress_calls"] == "1", r
    assert r["json"] == "" and not os.path.exists(cancelled), r


def run():
    with ct.tmpdir() as d:
        rt = tm.ResNetTiny(os.path.join(d, "model.onnx"), seed=3, input_size=SIZE)
        paths, arrays = tm.write_chips(d, 10, 3, SIZE, seed=9)
        calibrated = test_ranges_and_copy(d, rt, paths, arrays)
        test_selection(d, rt, paths, arrays)
        test_unreadable_chip(d, rt, paths, arrays)
        test_usage(d, rt, paths)
        test_bad_metadata(d, rt, calibrated, paths)
        test_engine(d, rt)
        test_library(d, rt, paths)


if __name__ == "__main__":
    ct.main(run)
