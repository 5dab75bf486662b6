"""The ONNX metadata rewrite behind `canopy evaluate --write-model`
(cnp_onnx_set_metadata), checked with the onnx package and Python's protobuf:
only the canopy.thresholds entry changes (replaced, added or de-duplicated),
graphs/initializers/opsets are identical, and every byte outside that entry
is the input's. Bad input leaves no output."""
import json
import os

import onnx

import evaltest as et
import tinymodels as tm  # tests/lib/ is on PYTHONPATH
from evaltest import ct

KEY = "canopy.thresholds"


entry_bytes = et.entry_bytes


def run_case(d, name, meta, new_value, big=False):
    src = os.path.join(d, name + ".onnx")
    dst = os.path.join(d, name + ".out.onnx")
    onnx.save(tm.onnx_graph_model(meta, big), src)
    p, _ = et.probe("set-meta", src, dst, KEY, new_value)
    a = open(src, "rb").read()
    b = open(dst, "rb").read()

    # Bytes: the input with the entry replaced / added / de-duplicated.
    olds = [entry_bytes(k, v) for k, v in meta if k == KEY]
    new = entry_bytes(KEY, new_value)
    if not olds:
        want = a + new
    else:
        want = a
        for i, old in enumerate(olds):
            at = want.find(old)
            assert at >= 0, name
            want = want[:at] + (new if i == 0 else b"") + want[at + len(old):]
    assert b == want, "%s: output bytes differ from the input outside the entry" % name

    # Models: identical except for the one metadata value.
    ma, mb = onnx.load(src), onnx.load(dst)
    onnx.checker.check_model(mb)
    assert ma.graph.SerializeToString() == mb.graph.SerializeToString(), name
    assert [x.SerializeToString() for x in ma.graph.initializer] == \
        [x.SerializeToString() for x in mb.graph.initializer], name
    assert list(ma.opset_import) == list(mb.opset_import), name
    for f in ("ir_version", "producer_name", "producer_version", "doc_string",
              "model_version", "domain"):
        assert getattr(ma, f) == getattr(mb, f), (name, f)
    da = {e.key: e.value for e in ma.metadata_props}
    db = {e.key: e.value for e in mb.metadata_props}
    da[KEY] = new_value
    assert da == db, (name, da, db)
    assert [e.key for e in mb.metadata_props].count(KEY) == 1, name
    return dst


def test():
    labels = json.dumps(et.KAGGLE_LABELS[:4])
    value = "[0.15,0.2,0.07,0.91]"
    with ct.tmpdir() as d:
        run_case(d, "replace", [("canopy.labels", labels), (KEY, "[0.2,0.2,0.2,0.2]"),
                                ("canopy.name", "tiny")], value)
        run_case(d, "first", [(KEY, "[0.2,0.2,0.2,0.2]"), ("canopy.labels", labels)], value)
        run_case(d, "add", [("canopy.labels", labels), ("canopy.name", "tiny")], value)
        run_case(d, "none", [], value)
        run_case(d, "duplicate", [(KEY, "[0.5,0.5,0.5,0.5]"), ("canopy.labels", labels),
                                  (KEY, "[0.3,0.3,0.3,0.3]")], value)
        # a key that merely starts like ours is left alone
        run_case(d, "prefix", [(KEY + "_old", "[0.2]"), (KEY, "[0.2,0.2,0.2,0.2]")], value)
        # long values and a 1 MB initializer: multi-byte lengths
        run_case(d, "big", [("canopy.labels", labels), (KEY, "[" + ",".join(["0.2"] * 200)
                                                         + "]")],
                 "[" + ",".join(["0.123456"] * 300) + "]", big=True)

        # In place: the same path as input and output.
        src = os.path.join(d, "inplace.onnx")
        onnx.save(tm.onnx_graph_model([(KEY, "[0.2,0.2,0.2,0.2]")]), src)
        before = open(src, "rb").read()
        et.probe("set-meta", src, src, KEY, value)
        m = onnx.load(src)
        assert {e.key: e.value for e in m.metadata_props}[KEY] == value
        assert open(src, "rb").read() == before.replace(entry_bytes(KEY, "[0.2,0.2,0.2,0.2]"),
                                                        entry_bytes(KEY, value))

        # Bad input: exit 1, a message naming the file, no output, no temp file.
        full = open(os.path.join(d, "replace.onnx"), "rb").read()
        cases = {"truncated.onnx": full[: len(full) // 2],
                 "garbage.onnx": bytes(range(7, 256)) * 8,
                 "empty.onnx": b""}
        for name, data in cases.items():
            src = os.path.join(d, name)
            with open(src, "wb") as f:
                f.write(data)
            dst = os.path.join(d, "out-" + name)
            p, _ = et.probe("set-meta", src, dst, KEY, value, check=False)
            assert p.returncode == 1 and src in p.stderr, (name, p.returncode, p.stderr)
            assert not os.path.exists(dst), name
        p, _ = et.probe("set-meta", os.path.join(d, "replace.onnx"),
                        os.path.join(d, "no-such-dir", "x.onnx"), KEY, value, check=False)
        assert p.returncode == 1 and "no-such-dir" in p.stderr, p.stderr
        ro = os.path.join(d, "ro")
        os.mkdir(ro)
        os.chmod(ro, 0o555)
        if os.geteuid() != 0:  # root writes anywhere
            p, _ = et.probe("set-meta", os.path.join(d, "replace.onnx"),
                            os.path.join(ro, "x.onnx"), KEY, value, check=False)
            assert p.returncode == 1 and not os.listdir(ro), p.stderr
        os.chmod(ro, 0o755)
        leftovers = [f for f in os.listdir(d) if ".tmp-" in f]
        assert not leftovers, leftovers


ct.main(test)
