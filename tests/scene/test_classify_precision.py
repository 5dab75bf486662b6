"""canopy classify --precision: the manifest records the precision that
ran, so that a bf16 run is not "up to date" against an fp32 one (nor the
other way round), while a bf16 request that fell back to fp32 (forced with
CANOPY_NO_BF16=1) is the fp32 run it is. bf16 probabilities differ from
fp32 ones (the outputs are rewritten). The same for int8 with a model
`canopy calibrate` wrote, and an uncalibrated model refused with exit 2
before any output is written. Each part is skipped on a CPU without its
instructions (the whole test, exit 77, when both are missing).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import canopytest as ct  # noqa: E402
import test_classify_lib as L  # noqa: E402

GT = [400020.0, 3.0, 0.0, 8950020.0, 0.0, -3.0]
FALLBACK = "canopy: --precision bf16: this CPU has no AVX512_BF16; running in fp32"
FALLBACK8 = "canopy: --precision int8: this CPU has no AVX512_VNNI; running in fp32"


def precision(out):
    m = L.load_manifest(os.path.join(out, "scene.manifest.json"))
    return m["parameters"]["precision"]


def check_int8(d, tiny, scene):
    cal = os.path.join(d, "tiny-int8.onnx")
    ct.canopy("calibrate", tiny.path, "--write-model", cal, "-q", scene)
    out = os.path.join(d, "out8")
    base = ["-m", cal, "-o", out, "--chip", 32, "--probs-type", "Float32"]
    L.classify(*base, scene)
    assert precision(out) == "fp32", precision(out)
    probs32 = L.read_probs(os.path.join(out, "scene.probs.tif"))[0]
    p = L.classify(*(base + ["--precision", "int8"]), scene)
    assert ": up to date (" not in p.stdout and FALLBACK8 not in p.stderr, p
    assert precision(out) == "int8", precision(out)
    diff = float(abs(L.read_probs(os.path.join(out, "scene.probs.tif"))[0] - probs32).max())
    assert diff > 1e-6, "int8 probabilities equal the fp32 ones: int8 did not run"
    p = L.classify(*(base + ["--precision", "int8"]), scene)
    assert ": up to date (" in p.stdout, p.stdout
    env = dict(os.environ, CANOPY_NO_INT8="1")
    p = ct.canopy("classify", *(base + ["--precision", "int8", scene]), env=env)
    assert p.stderr.count(FALLBACK8) == 1 and precision(out) == "fp32", p
    # The model as exported has no ranges: refused before anything is written.
    out2 = os.path.join(d, "out-uncal")
    p = ct.canopy("classify", "-m", tiny.path, "-o", out2, "--chip", 32, "--precision", "int8",
                  scene, check=False)
    assert p.returncode == 2 and "canopy calibrate" in p.stderr, p
    assert not os.path.exists(os.path.join(out2, "scene.manifest.json")), os.listdir(out2)
    print("int8 after fp32: classified again (max |p diff| %.2e), manifest precision int8, "
          "a second int8 run up to date; forced fallback recorded as fp32; an uncalibrated "
          "model refused (exit 2)" % diff)


def run():
    ver = ct.canopy("--version").stdout
    if "bf16 available" not in ver and "int8 available" not in ver:
        print("SKIP: this CPU has neither AVX512_BF16 nor AVX512_VNNI")
        sys.exit(ct.SKIP)
    with ct.tmpdir() as d:
        tiny = L.Tiny(os.path.join(d, "tiny.onnx"), seed=3, input_size=32)
        scene = os.path.join(d, "scene.tif")
        L.make_scene(scene, L.texture(61, 3, 160, 192), GT, 32720)
        if "int8 available" in ver:
            check_int8(d, tiny, scene)
        else:
            print("int8 part skipped: no AVX512_VNNI")
        if "bf16 available" not in ver:
            print("bf16 part skipped: no AVX512_BF16")
            return
        out = os.path.join(d, "out")
        base = ["-m", tiny.path, "-o", out, "--chip", 32, "--probs-type", "Float32"]

        p = L.classify(*base, scene)
        assert precision(out) == "fp32", precision(out)
        probs32 = L.read_probs(os.path.join(out, "scene.probs.tif"))[0]

        p = L.classify(*(base + ["--precision", "bf16"]), scene)
        assert ": up to date (" not in p.stdout, p.stdout
        assert FALLBACK not in p.stderr, p.stderr
        assert precision(out) == "bf16", precision(out)
        probs16 = L.read_probs(os.path.join(out, "scene.probs.tif"))[0]
        diff = float(abs(probs16 - probs32).max())
        assert diff > 1e-6, "bf16 probabilities equal the fp32 ones: bf16 did not run"
        p = L.classify(*(base + ["--precision", "bf16"]), scene)
        assert ": up to date (" in p.stdout, p.stdout
        print("bf16 after fp32: classified again (max |p diff| %.2e), manifest precision bf16; "
              "a second bf16 run is up to date" % diff)

        env = dict(os.environ, CANOPY_NO_BF16="1")
        p = ct.canopy("classify", *(base + ["--precision", "bf16", scene]), env=env)
        assert p.stderr.count(FALLBACK) == 1, p.stderr
        assert ": up to date (" not in p.stdout, p.stdout
        assert precision(out) == "fp32", precision(out)
        p = L.classify(*base, scene)
        assert ": up to date (" in p.stdout, p.stdout
        print("forced fallback: one message, recorded as fp32; fp32 then up to date")


ct.main(run)
