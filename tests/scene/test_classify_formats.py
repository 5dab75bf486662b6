"""canopy classify reads any raster GDAL opens, of any data type: the same
pixels as a GeoTIFF, a VRT, a file inside a zip (/vsizip/), a COG (with
overviews, which must not be used), lossless JPEG 2000, Int16 and Float32
(with --scale-range) give the same probabilities; Float32 NaN pixels count
as invalid. The manifest lists every file a scene is made of. --markers
chooses the labels written to GeoJSON.
"""
import os
import sys
import zipfile

import numpy as np
from osgeo import gdal

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import canopytest as ct  # noqa: E402
import test_classify_lib as L  # noqa: E402

W, H, CHIP = 260, 200, 64
GT = [700020.0, 3.0, 0.0, 8870010.0, 0.0, -3.0]


def run():
    with ct.tmpdir() as d:
        tiny = L.Tiny(os.path.join(d, "tiny.onnx"), seed=13, input_size=32)
        out = os.path.join(d, "out")
        arr = L.texture(31, 3, H, W)
        base = os.path.join(d, "base.tif")
        L.make_scene(base, arr, GT, 32720)

        def probs(path, *extra):
            name = os.path.splitext(os.path.basename(path))[0]
            L.classify("-q", "-m", tiny.path, "-o", out, "--chip", CHIP, "--probs-type",
                       "Float32", *extra, path)
            p, names, ds = L.read_probs(os.path.join(out, name + ".probs.tif"))
            assert ds.GetGeoTransform() == (GT[0], GT[1] * CHIP, 0.0, GT[3], 0.0, GT[5] * CHIP)
            return p, L.load_manifest(os.path.join(out, name + ".manifest.json"))

        ref, m = probs(base)
        assert [i["path"] for i in m["inputs"]] == [os.path.realpath(base)]

        variants = []
        vrt = os.path.join(d, "mosaic.vrt")
        gdal.BuildVRT(vrt, [base])
        variants.append(("VRT", vrt, (), [vrt, base]))
        zpath = os.path.join(d, "scene.zip")
        with zipfile.ZipFile(zpath, "w", zipfile.ZIP_DEFLATED) as z:
            z.write(base, "zipped.tif")
        variants.append(("/vsizip/", "/vsizip/%s/zipped.tif" % zpath, (), None))
        cog = os.path.join(d, "cog.tif")
        gdal.Translate(cog, base, format="COG", creationOptions=["OVERVIEWS=AUTO", "BLOCKSIZE=128",
                                                                  "COMPRESS=DEFLATE"])
        cds = gdal.Open(cog)
        assert cds.GetRasterBand(1).GetOverviewCount() > 0
        cds = None
        variants.append(("COG", cog, (), [cog]))
        if gdal.GetDriverByName("JP2OpenJPEG"):
            jp2 = os.path.join(d, "lossless.jp2")
            gdal.Translate(jp2, base, format="JP2OpenJPEG", creationOptions=["REVERSIBLE=YES",
                                                                             "QUALITY=100"])
            assert np.array_equal(gdal.Open(jp2).ReadAsArray(), arr), "JP2 not lossless"
            variants.append(("JPEG 2000", jp2, (), None))
        i16 = os.path.join(d, "int16.tif")
        L.make_scene(i16, arr.astype(np.int16) - 100, GT, 32720, dtype=gdal.GDT_Int16)
        variants.append(("Int16", i16, ("--scale-range", "-100,155"), [i16]))
        f32 = os.path.join(d, "float32.tif")
        L.make_scene(f32, arr.astype(np.float32) / 255.0, GT, 32720, dtype=gdal.GDT_Float32)
        variants.append(("Float32", f32, ("--scale-range", "0,1"), [f32]))

        for what, path, extra, files in variants:
            p, m = probs(path, *extra)
            assert np.array_equal(np.isnan(p), np.isnan(ref)), what
            err = np.nanmax(np.abs(p - ref))
            assert err <= 2e-5, "%s: differs from the GeoTIFF by %g" % (what, err)
            got = [i["path"] for i in m["inputs"]]
            if files is not None:
                assert sorted(got) == sorted(os.path.realpath(f) for f in files), (what, got)
            if path.startswith("/vsizip/"):
                assert got == [path] and m["inputs"][0]["sha256"] == L.sha256(base), m["inputs"]
            print("%-10s same probabilities as the GeoTIFF (max diff %.1e); inputs %s" % (
                what, err, [os.path.basename(g) for g in got]))

        # Float32 NaN pixels are invalid: a NaN block empties two chips.
        fn = arr.astype(np.float32) / 255.0
        fn[:, 0:128, 0:64] = np.nan
        nanp = os.path.join(d, "nan.tif")
        L.make_scene(nanp, fn, GT, 32720, dtype=gdal.GDT_Float32)
        p, m = probs(nanp, "--scale-range", "0,1")
        assert np.isnan(p[0, 0]).all() and np.isnan(p[1, 0]).all(), "NaN chips classified"
        same = ~np.isnan(p[..., 0])
        assert np.nanmax(np.abs(p[same] - ref[same])) <= 2e-5
        assert m["chips"]["classified"] == int((~np.isnan(ref[..., 0])).sum()) - 2

        # --markers: none -> an empty collection; road -> only road regions.
        for choice, allowed in (("none", set()), ("road,water", {"road", "water"})):
            o = os.path.join(d, "markers_" + choice.replace(",", "_"))
            L.classify("-q", "-m", tiny.path, "-o", o, "--chip", CHIP, "--markers", choice, base)
            gj = L.load_manifest(os.path.join(o, "base.markers.geojson"))
            labs = {f["properties"]["label"] for f in gj["features"]}
            assert labs <= allowed and (labs or not allowed), (choice, labs)
            m = L.load_manifest(os.path.join(o, "base.manifest.json"))
            assert set(m["parameters"]["markers"]) == allowed
        print("--markers none / road,water: as asked")


ct.main(run)
