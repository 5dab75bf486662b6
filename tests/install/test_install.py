"""libcanopy as installed: `make install-lib DESTDIR=...` (the library, its
public headers and canopy.pc), then

- only the public headers, under include/canopy/;
- `nm -D --defined-only` of the shared library and `nm -g --defined-only` of
  the static archive list only cnp_ symbols (the uninstalled archive does
  hold others, protobuf-c's onnx__*: the install step is what hides them);
- tests/install/consumer.c compiled with `pkg-config --cflags --libs canopy`
  (shared) and against libcanopy.a with `pkg-config --static --libs`,
  classifies a small scene through the public API; its result object is
  compared with the manifest, read with the json module; a second run is
  skipped as up to date; a progress callback that cancels leaves nothing.
"""
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scene"))
import canopytest as ct  # noqa: E402
import test_classify_lib as L  # noqa: E402

GT = [400020.0, 3.0, 0.0, 8950020.0, 0.0, -3.0]
HERE = os.path.dirname(os.path.abspath(__file__))


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
    env.update(extra)
    return env


def install(root):
    ct.run(["make", "-s", "-C", ct.BUILDDIR, "install-lib", "DESTDIR=" + root],
           env=clean_env())
    pcs = [os.path.join(dp, f) for dp, _, fs in os.walk(root) for f in fs if f == "canopy.pc"]
    assert len(pcs) == 1, pcs
    return os.path.dirname(pcs[0]), os.path.dirname(os.path.dirname(pcs[0]))


def symbols(args):
    out = ct.run(["nm"] + args).stdout
    names = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and not line.endswith(":"):
            names.append(parts[-1])
    return names


def check_symbols(libdir):
    sos = [f for f in os.listdir(libdir) if f.startswith("libcanopy.so.")]
    assert sos, os.listdir(libdir)
    for args in (["-D", "--defined-only", os.path.join(libdir, sos[0])],
                 ["-g", "--defined-only", os.path.join(libdir, "libcanopy.a")]):
        names = symbols(args)
        assert "cnp_classify_scene" in names and "cnp_version" in names, (args, names[:20])
        other = sorted(n for n in names if not n.startswith("cnp_"))
        assert not other, (args, other[:20])
        print("%s: %d symbols, all cnp_" % (os.path.basename(args[-1]), len(names)))
    built = os.path.join(ct.BUILDDIR, "classifier", ".libs", "libcanopy.a")
    inner = symbols(["-g", "--defined-only", built])
    assert any(n.startswith("onnx__") for n in inner), "the check above could not fail"


def pkg_config(pcdir, root, *args):
    env = clean_env(PKG_CONFIG_PATH=pcdir, PKG_CONFIG_SYSROOT_DIR=root)
    return ct.run(["pkg-config"] + list(args) + ["canopy"], env=env).stdout.split()


def build(d, pcdir, root, libdir, incdir):
    cc = os.environ.get("CC", "cc")
    src = os.path.join(HERE, "consumer.c")
    shared = os.path.join(d, "consumer")
    flags = pkg_config(pcdir, root, "--cflags", "--libs")
    assert "-I" + incdir in flags and "-lcanopy" in flags, flags
    ct.run([cc, "-std=c11", "-Wall", "-Werror", "-o", shared, src] + flags)
    # libcanopy.a, its dependencies shared (their static archives, e.g.
    # GDAL's, need not be installed): Requires.private and Libs.private.
    static = os.path.join(d, "consumer-static")
    with open(os.path.join(pcdir, "canopy.pc")) as f:
        pc = dict(line.split(":", 1) for line in f.read().splitlines() if ": " in line)
    deps = ct.run(["pkg-config", "--libs"] + pc["Requires.private"].split()).stdout.split()
    ct.run([cc, "-std=c11", "-o", static, src, os.path.join(libdir, "libcanopy.a"),
            "-I" + incdir] + deps + pc["Libs.private"].split())
    ldd = ct.run(["ldd", shared], env=clean_env(LD_LIBRARY_PATH=libdir)).stdout
    assert os.path.join(libdir, "libcanopy.so") in ldd, ldd
    assert "libcanopy" not in ct.run(["ldd", static]).stdout
    return shared, static


def result(prog, libdir, *args, rc=0):
    p = ct.run([prog] + list(args), check=False, env=clean_env(LD_LIBRARY_PATH=libdir))
    assert p.returncode == rc, (prog, args, p.returncode, p.stdout, p.stderr)
    return dict(line.split("=", 1) for line in p.stdout.splitlines())


def run():
    with ct.tmpdir() as d:
        root = os.path.join(d, "root")
        pcdir, libdir = install(root)
        incdir = os.path.join(os.path.dirname(libdir), "include")
        if not os.path.isdir(os.path.join(incdir, "canopy")):  # multiarch libdir
            incdir = [os.path.join(dp) for dp, dn, _ in os.walk(root) if "canopy" in dn
                      and dp.endswith("include")][0]
        hdrs = sorted(os.listdir(os.path.join(incdir, "canopy")))
        assert hdrs == ["calibrate.h", "canopy.h", "classify.h", "evaluate.h", "predict.h",
                        "status.h"], hdrs
        check_symbols(libdir)
        shared, static = build(d, pcdir, root, libdir, incdir)

        tiny = L.Tiny(os.path.join(d, "tiny.onnx"), seed=4, input_size=32)
        scene = os.path.join(d, "scene.tif")
        L.make_scene(scene, L.texture(5, 3, 200, 240), GT, 32720)
        out = os.path.join(d, "out")
        r = result(shared, libdir, tiny.path, out, scene)
        m = L.load_manifest(os.path.join(out, "scene.manifest.json"))
        assert r["status"] == "ok" and r["skipped"] == "0" and r["name"] == "scene", r
        assert int(r["total"]) == m["chips"]["cells"] == 8 * 7, (r, m["chips"])
        assert int(r["classified"]) == m["chips"]["classified"], (r, m["chips"])
        assert int(r["nodata"]) == m["chips"]["skipped"] and r["obscured"] == "0", r
        assert int(r["partial"]) == m["chips"]["partial"], r
        for label, n in m["positive_chips"].items():
            assert int(r["positive." + label]) == n, (label, r)
        assert r["output.manifest"] == os.path.join(out, "scene.manifest.json"), r
        for kind in ("probs", "masks", "markers"):
            assert os.path.isfile(r["output." + kind]), r
        assert int(r["progress_calls"]) >= 2 and r["version"], r
        r = result(static, libdir, tiny.path, out, scene)
        assert r["status"] == "ok" and r["skipped"] == "1", r
        assert int(r["classified"]) == m["chips"]["classified"], r
        out2 = os.path.join(d, "out2")
        r = result(static, libdir, tiny.path, out2, scene, "cancel")
        assert r["status"] == "cancelled" and "interrupted" in r["message"], r
        assert os.listdir(out2) == [], os.listdir(out2)
        print("consumer (shared and static): result = manifest; up to date; cancel leaves "
              "nothing")
        shutil.rmtree(root)


ct.main(run)
