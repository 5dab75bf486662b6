"""NAME.quicklook.png: opens with GDAL at the documented size, georeferenced
like the scene (world file and .aux.xml), the marker colours where the
markers are (the GeoJSON rasterised independently with GDAL/OGR), new
alerts outlined, overviews used, bad input leaving nothing behind."""
import os

import numpy as np
from osgeo import gdal, osr

import canopytest as ct
import pictest as pt


def close(rgb, colour, tol=40):
    return (np.abs(rgb - np.array(colour)).sum(axis=2) <= tol)


def outside_panels(shape, rects, margin=3):
    keep = np.ones(shape, bool)
    for x, y, w, h in rects:
        keep[max(0, int(y) - margin):int(y + h) + margin, max(0, int(x) - margin):int(x + w) + margin] = False
    return keep


def check_geo(png, scene, size):
    ds, sc = gdal.Open(png), gdal.Open(scene)
    w, h = sc.RasterXSize, sc.RasterYSize
    want = (size, max(1, round(size * h / w))) if w >= h else (max(1, round(size * w / h)), size)
    assert (ds.RasterXSize, ds.RasterYSize) == want, (ds.RasterXSize, ds.RasterYSize, want)
    assert ds.RasterCount == 3 and ds.GetDriver().ShortName == "PNG"
    gt, sgt = ds.GetGeoTransform(), sc.GetGeoTransform()
    assert abs(gt[0] - sgt[0]) < 1e-6 and abs(gt[3] - sgt[3]) < 1e-6, (gt, sgt)
    assert abs(gt[1] * ds.RasterXSize - sgt[1] * w) < 1e-6 * abs(sgt[1] * w), (gt, sgt)
    assert abs(gt[5] * ds.RasterYSize - sgt[5] * h) < 1e-6 * abs(sgt[5] * h), (gt, sgt)
    a, b = osr.SpatialReference(wkt=ds.GetProjection()), osr.SpatialReference(wkt=sc.GetProjection())
    assert a.IsSame(b), "the quick-look's CRS differs from the scene's"
    # The world file alone says the same (QGIS reads either).
    pgw = png[:-4] + ".pgw"
    v = [float(x) for x in open(pgw).read().split()]
    assert len(v) == 6
    assert abs(v[0] - gt[1]) < 1e-9 and abs(v[3] - gt[5]) < 1e-9
    assert abs(v[4] - (gt[0] + gt[1] / 2)) < 1e-6 and abs(v[5] - (gt[3] + gt[5] / 2)) < 1e-6


def check_colours(png, markers, labels):
    rgb = pt.read_rgb(png)
    keep = outside_panels(rgb.shape[:2], pt.panels(png))
    assert len(pt.panels(png)) >= 3, "title, legend and scale bar panels expected"
    all_bounds = pt.rasterize_boundaries(markers, png)
    for label in labels:
        bound = pt.rasterize_boundaries(markers, png, label) & keep
        others = pt.rasterize_boundaries(markers, png) & ~pt.rasterize_boundaries(markers, png, label)
        own = bound & ~pt.dilate(others, 3)
        assert own.sum() > 50, "%s: too few outline pixels to test (%d)" % (label, own.sum())
        hit = pt.dilate(close(rgb, pt.PALETTE[label]), 1)
        frac = (hit & own).sum() / own.sum()
        assert frac > 0.9, "%s: only %.0f %% of its outline has its colour %s" % (
            label, 100 * frac, pt.PALETTE[label])
        # ... and the colour is not elsewhere (away from every outline).
        far = ~pt.dilate(all_bounds, 5) & keep
        stray = (close(rgb, pt.PALETTE[label], 25) & far).sum() / far.sum()
        assert stray < 0.002, "%s: its colour is on %.2f %% of the image away from outlines" % (
            label, 100 * stray)


def main():
    with ct.tmpdir() as d:
        out = os.path.join(d, "out")
        os.mkdir(out)
        scene = pt.make_scene(os.path.join(d, "s1.tif"), 1500, 1000)
        regions = [("road", (0.05, 0.1, 0.4, 0.5)), ("agriculture", (0.1, 0.6, 0.45, 0.9)),
                   ("slash_burn", (0.6, 0.55, 0.85, 0.85))]
        pt.write_markers(os.path.join(out, "s1.markers.geojson"), scene, regions)
        pt.write_manifest(out, "s1", scene, {"road": 12, "agriculture": 30, "slash_burn": 3},
                          date="2024-03-05")
        r = pt.kv(pt.probe("quicklook", out, "s1").stdout)
        png = os.path.join(out, "s1.quicklook.png")
        assert r["width"] == "1024" and r["height"] == "683", r
        assert r["regions"] == "3", r
        check_geo(png, scene, 1024)
        check_colours(png, os.path.join(out, "s1.markers.geojson"),
                      ["road", "agriculture", "slash_burn"])
        # The scene itself: the stretched magenta box is where the scene has it.
        rgb = pt.read_rgb(png)
        x0, y0, x1, y1 = pt.MAGENTA_BOX
        inner = rgb[int(y0 * 683) + 8:int(y1 * 683) - 8, int(x0 * 1024) + 8:int(x1 * 1024) - 8]
        mag = close(inner, (255, 0, 255), 60).mean()
        assert mag > 0.8, "the scene's box is not drawn where it is (%.2f magenta)" % mag
        pt.no_temporaries(out)

        # Hostile names: long, multibyte, invalid UTF-8, control characters:
        # the title is shortened and drawn, never a failure.
        for name in ("\u03a9sc\u00e8ne-" * 18 + '"<&>', "bad\udcff\udcfe\nname\t" * 8):
            pt.write_manifest(out, name, scene, {"road": 12})
            os.link(os.path.join(out, "s1.markers.geojson"),
                    os.path.join(out, name + ".markers.geojson"))
            r = pt.kv(pt.probe("quicklook", out, name).stdout)
            assert r["regions"] == "3", r
            os.remove(os.path.join(out, name + ".manifest.json"))

        # Another size; a portrait scene; a new-alerts overlay.
        scene2 = pt.make_scene(os.path.join(d, "s2.tif"), 600, 900, epsg=32633,
                               origin=(400000.0, 5000000.0), pixel=10.0)
        pt.write_markers(os.path.join(out, "s2.markers.geojson"), scene2,
                         [("habitation", (0.2, 0.2, 0.6, 0.5))])
        alerts = os.path.join(d, "s2.alerts.geojson")
        pt.write_markers(alerts, scene2, [("road", (0.3, 0.6, 0.8, 0.9))])
        pt.write_manifest(out, "s2", scene2, {"habitation": 5})
        r = pt.kv(pt.probe("quicklook", out, "s2", os.path.join(out, "s2.quicklook.png"), 512,
                           alerts).stdout)
        assert (r["width"], r["height"], r["alerts"]) == ("341", "512", "1"), r
        png2 = os.path.join(out, "s2.quicklook.png")
        check_geo(png2, scene2, 512)
        rgb = pt.read_rgb(png2)
        bound = pt.rasterize_boundaries(alerts, png2) & outside_panels(rgb.shape[:2], pt.panels(png2))
        near = pt.dilate(bound, 2)
        black = (close(rgb, (0, 0, 0), 30) & near).sum()
        white = (close(rgb, (255, 255, 255), 30) & near).sum()
        assert black > 0.4 * bound.sum() and white > 0.4 * bound.sum(), (black, white, bound.sum())

        # Overviews are used: a scene with overviews reads a reduced level.
        big = pt.make_scene(os.path.join(d, "big.tif"), 4096, 2048, overviews=True)
        pt.write_manifest(out, "big", big, {})
        r = pt.kv(pt.probe("quicklook", out, "big").stdout)
        assert int(r["overview"]) >= 2, r
        assert (r["width"], r["height"], r["regions"]) == ("1024", "512", "0"), r

        # Bad input: a missing scene, an unreadable markers file: exit 1, one
        # message naming the file, nothing written.
        os.remove(big)
        gone = os.path.join(out, "gone.png")
        p = pt.probe("quicklook", out, "big", gone, check=False)
        assert p.returncode == 1 and "big.tif" in p.stderr, (p.returncode, p.stderr)
        assert not any(n.startswith("gone") for n in os.listdir(out)), os.listdir(out)
        with open(os.path.join(out, "s1.markers.geojson"), "w") as f:
            f.write("{not json")
        before = os.path.getmtime(png)
        p = pt.probe("quicklook", out, "s1", check=False)
        assert p.returncode == 1 and "s1.markers.geojson" in p.stderr, p.stderr
        assert os.path.getmtime(png) == before, "a failed quick-look replaced the old one"
        pt.no_temporaries(out)


ct.main(main)
