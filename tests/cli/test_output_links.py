"""No output is ever written through a link (issue 13, item 1), tried as the
attack: before canopy starts, a hostile user who can write to the output
folder plants symlinks to victim files

- at every temporary name older canopy versions used, ".NAME.SUFFIX.tmp-PID"
  (the PID is known here: the child is forked first and waits), and
- at the final output names (NAME.probs.tif, .masks.tif, .qml styles,
  .markers.geojson, .manifest.json),

and for `canopy evaluate --write-model` at the model's old ".NAME.tmp-PID-1"
and at the final model name. After the runs every victim is byte for byte
as before, every final name is a regular file (valid: read back with GDAL,
OGR and the json module), and no temporary is left (".tmp-" or the private
".canopy-" folders).
"""
import hashlib
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scene"))
import canopytest as ct  # noqa: E402
import test_classify_lib as L  # noqa: E402
from osgeo import gdal, ogr  # noqa: E402

GT = [400020.0, 3.0, 0.0, 8950020.0, 0.0, -3.0]
SUFFIXES = (".probs.tif", ".probs.qml", ".masks.tif", ".masks.qml", ".markers.geojson",
            ".manifest.json")


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def run_forked(args, plant):
    """Forks, lets plant(pid) set the trap, then the child execs args.
    Returns (exit status, stdout, stderr)."""
    r, w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(w)
        os.read(r, 1)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        os.execv(args[0], args)
    os.close(r)
    os.close(out_w)
    os.close(err_w)
    plant(pid)
    os.write(w, b"x")
    os.close(w)
    with os.fdopen(out_r) as fo, os.fdopen(err_r) as fe:
        so, se = fo.read(), fe.read()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), so, se


def make_victims(d, n):
    vdir = os.path.join(d, "victims")
    os.makedirs(vdir, exist_ok=True)
    victims = []
    for i in range(n):
        p = os.path.join(vdir, "v%03d" % i)
        with open(p, "w") as f:
            f.write("precious %d\n" % i)
        victims.append(p)
    return victims


def check_clean(out):
    left = [f for f in os.listdir(out) if not os.path.islink(os.path.join(out, f)) and
            (".tmp-" in f or f.startswith(".canopy-"))]
    assert not left, left


def classify_attack(d, tiny):
    scene = os.path.join(d, "a.tif")
    L.make_scene(scene, L.texture(3, 3, 200, 256), GT, 32720)
    out = os.path.join(d, "out")
    os.mkdir(out)
    victims = make_victims(d, 2 * len(SUFFIXES) + 2)
    before = {v: digest(v) for v in victims}
    planted = {}

    def plant(pid):
        for i, suf in enumerate(SUFFIXES):
            old_tmp = os.path.join(out, ".a%s.tmp-%d" % (suf, pid))
            os.symlink(victims[2 * i], old_tmp)
            planted[old_tmp] = victims[2 * i]
            final = os.path.join(out, "a" + suf)
            os.symlink(victims[2 * i + 1], final)
            planted[final] = victims[2 * i + 1]
        probe = os.path.join(out, ".canopy-probe-%d" % pid)
        os.symlink(victims[-1], probe)
        planted[probe] = victims[-1]

    args = [ct.CANOPY, "classify", "-m", tiny.path, "-o", out, "--chip", "32", "--threads", "1",
            scene]
    rc, so, se = run_forked(args, plant)
    assert rc == 0, (rc, so, se)
    for v, h in before.items():
        assert digest(v) == h, "victim %s was changed" % v
    for suf in SUFFIXES:
        final = os.path.join(out, "a" + suf)
        assert not os.path.islink(final) and os.path.isfile(final), final
    ds = gdal.Open(os.path.join(out, "a.probs.tif"))
    assert ds.RasterCount == len(tiny.labels), ds.RasterCount
    ds = None
    assert ogr.Open(os.path.join(out, "a.markers.geojson")) is not None
    with open(os.path.join(out, "a.manifest.json")) as f:
        m = json.load(f)
    assert m["chips"]["classified"] > 0, m["chips"]
    # The planted temporaries are still links to the untouched victims.
    for link, target in planted.items():
        if os.path.basename(link).startswith("."):
            assert os.path.islink(link) and os.readlink(link) == target, link
    check_clean(out)
    print("classify: %d links planted, victims untouched, outputs regular and valid"
          % len(planted))


def write_model_attack(d, tiny):
    work = os.path.join(d, "model")
    os.mkdir(work)
    victims = make_victims(os.path.join(d, "mv"), 2)
    before = {v: digest(v) for v in victims}
    model = os.path.join(work, "m.onnx")
    with open(tiny.path, "rb") as src, open(model, "wb") as dst:
        dst.write(src.read())
    chips = os.path.join(d, "chips")
    os.mkdir(chips)
    rows = ["image_name,tags"]
    for i in range(4):
        p = os.path.join(chips, "c%d.tif" % i)
        L.make_scene(p, L.texture(20 + i, 3, 32, 32), GT, 32720)
        rows.append("c%d,%s" % (i, "primary clear" if i % 2 else "agriculture road"))
    labels = os.path.join(d, "labels.csv")
    with open(labels, "w") as f:
        f.write("\n".join(rows) + "\n")
    out_model = os.path.join(work, "tuned.onnx")

    def plant(pid):
        os.symlink(victims[0], os.path.join(work, ".tuned.onnx.tmp-%d-1" % pid))
        os.symlink(victims[1], out_model)

    args = [ct.CANOPY, "evaluate", "-m", model, "--labels", labels, "--images", chips, "--ext", "tif",
            "--threads", "1", "--optimize-thresholds", "--write-model", out_model]
    rc, so, se = run_forked(args, plant)
    assert rc == 0, (rc, so, se)
    for v, h in before.items():
        assert digest(v) == h, "victim %s was changed" % v
    assert not os.path.islink(out_model) and os.path.getsize(out_model) > 1000, out_model
    p = ct.canopy("info", out_model)
    assert "labels" in p.stdout.lower(), p.stdout
    check_clean(work)
    print("evaluate --write-model: victims untouched, the model regular and loadable")


def run():
    with ct.tmpdir() as d:
        tiny = L.Tiny(os.path.join(d, "tiny.onnx"), seed=2, input_size=32)
        classify_attack(d, tiny)
        write_model_attack(d, tiny)


ct.main(run)
