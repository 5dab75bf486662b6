"""canopy classify --precision: the manifest records the precision that
ran, so that a bf16 run is not "up to date" against an fp32 one (nor the
other way round), while a bf16 request that fell back to fp32 (forced with
CANOPY_NO_BF16=1) is the fp32 run it is. bf16 probabilities differ from
fp32 ones (the outputs are rewritten).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import canopytest as ct  # noqa: E402
import test_classify_lib as L  # noqa: E402

GT = [400020.0, 3.0, 0.0, 8950020.0, 0.0, -3.0]
FALLBACK = "canopy: --precision bf16: this CPU has no AVX512_BF16; running in fp32"


def precision(out):
    m = L.load_manifest(os.path.join(out, "scene.manifest.json"))
    return m["parameters"]["precision"]


def run():
    if "bf16 available" not in ct.canopy("--version").stdout:
        print("SKIP: this CPU has no AVX512_BF16")
        sys.exit(ct.SKIP)
    with ct.tmpdir() as d:
        tiny = L.Tiny(os.path.join(d, "tiny.onnx"), seed=3, input_size=32)
        scene = os.path.join(d, "scene.tif")
        L.make_scene(scene, L.texture(61, 3, 160, 192), GT, 32720)
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
