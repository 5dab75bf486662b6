#!/usr/bin/env python3
"""Outputs of classifier/writers, checked with independent readers.

tests/scene/test_writers (write mode) turns a synthetic result -- a Float32
GeoTIFF made here, one band per label -- into NAME.probs.tif, NAME.masks.tif
(+ per-label files), their .qml styles and NAME.markers.geojson. This test
reads them back with GDAL/OGR's Python bindings, `gdalinfo -json`, libtiff's
`tiffinfo`, GDAL's COG validator and xml.etree, and compares against
references computed here: numpy for values, scipy.ndimage for the
8-connected regions, OGR/GEOS unions of chip squares and a Lambert azimuthal
equal-area projection (PROJ) for outlines and areas, hashlib for SHA-256.

Grids: UTM 20S, EPSG:4326, EPSG:3857, UTM 60S across the antimeridian,
EPSG:3031 around the south pole (pole inside a chip and on a chip corner).
"""
import hashlib
import json
import math
import os
import xml.etree.ElementTree as ET

import numpy as np
from osgeo import gdal, ogr, osr
from scipy import ndimage

import canopytest as ct

gdal.UseExceptions()
ogr.UseExceptions()
osr.UseExceptions()

DRIVER = os.path.join(ct.BUILDDIR, "tests", "scene", "test_writers")
PROPS = {"label", "max_prob", "mean_prob", "chips", "area_m2", "scene", "model", "run_utc"}
MODEL = "test-model"
RUN_UTC = "2024-05-06T07:08:09Z"


def srs_of(epsg):
    s = osr.SpatialReference()
    s.ImportFromEPSG(epsg)
    s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return s


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


class Case:
    """A chip grid and its per-chip probabilities (rows, cols, labels)."""

    def __init__(self, name, epsg, gt, probs, labels, thresholds, markers):
        self.name = name
        self.epsg = epsg
        self.gt = tuple(float(v) for v in gt)
        self.probs = np.asarray(probs, dtype=np.float32)
        self.rows, self.cols, self.nl = self.probs.shape
        self.labels = labels
        self.thr = np.asarray(thresholds, dtype=np.float32)
        self.markers = markers

    def write_input(self, path):
        ds = gdal.GetDriverByName("GTiff").Create(path, self.cols, self.rows, self.nl,
                                                  gdal.GDT_Float32)
        ds.SetGeoTransform(self.gt)
        ds.SetSpatialRef(srs_of(self.epsg))
        for i in range(self.nl):
            b = ds.GetRasterBand(i + 1)
            b.WriteArray(self.probs[:, :, i])
            b.SetDescription(self.labels[i])
            b.SetMetadataItem("THRESHOLD", "%.9g" % self.thr[i])
            b.SetMetadataItem("MARKER", "1" if self.labels[i] in self.markers else "0")
        ds = None

    def positive(self, i):
        p = self.probs[:, :, i]
        return ~np.isnan(p) & (p >= self.thr[i])

    def cell_ring(self, r, c):
        g = self.gt
        pts = []
        for (x, y) in ((c, r), (c + 1, r), (c + 1, r + 1), (c, r + 1), (c, r)):
            pts.append((g[0] + x * g[1] + y * g[2], g[3] + x * g[4] + y * g[5]))
        return pts

    def point(self, col, row):
        g = self.gt
        return g[0] + col * g[1] + row * g[2], g[3] + col * g[4] + row * g[5]


def run_driver(case, outdir, *opts, expect_fail=False):
    inp = os.path.join(outdir, "..", case.name + ".input.tif")
    case.write_input(inp)
    p = ct.run([DRIVER, "write", inp, outdir, case.name] + list(opts), check=False)
    if expect_fail:
        check(p.returncode == 1, "%s: expected the writers to fail, exit %d\n%s"
              % (case.name, p.returncode, p.stderr))
        return p
    check(p.returncode == 0, "%s: test_writers exited %d:\n%s" % (case.name, p.returncode,
                                                                 p.stderr))
    return int(p.stdout.split()[1])


def gdalinfo(path):
    return json.loads(ct.run(["gdalinfo", "-json", path]).stdout)


def tiffinfo(path):
    return ct.run(["tiffinfo", path]).stdout


# ---- rasters ----------------------------------------------------------------

def expected_bytes(p):
    v = np.floor(p.astype(np.float64) * 255.0 + 0.5)
    v = np.clip(v, 0, 254)
    return np.where(np.isnan(p), 255, v).astype(np.uint8)


def expected_mask(case, i):
    p = case.probs[:, :, i]
    return np.where(np.isnan(p), 255, (p >= case.thr[i]).astype(np.uint8)).astype(np.uint8)


def round16(n):
    return 16 if n <= 16 else (n + 15) // 16 * 16


def check_common(case, path, kind):
    ds = gdal.Open(path)
    check((ds.RasterXSize, ds.RasterYSize, ds.RasterCount) == (case.cols, case.rows, case.nl),
          "%s: size %dx%dx%d" % (path, ds.RasterXSize, ds.RasterYSize, ds.RasterCount))
    check(ds.GetGeoTransform() == case.gt, "%s: geotransform %s != %s"
          % (path, ds.GetGeoTransform(), case.gt))
    check(ds.GetSpatialRef() is not None and ds.GetSpatialRef().IsSame(srs_of(case.epsg)),
          "%s: CRS differs from EPSG:%d" % (path, case.epsg))
    md = ds.GetMetadata()
    check(md.get("CANOPY_LABELS") == ",".join(case.labels), "%s: CANOPY_LABELS %r"
          % (path, md.get("CANOPY_LABELS")))
    check(md.get("CANOPY_MARKERS") == ",".join(l for l in case.labels if l in case.markers),
          "%s: CANOPY_MARKERS %r" % (path, md.get("CANOPY_MARKERS")))
    check(md.get("CANOPY_PRODUCT") == kind, "%s: CANOPY_PRODUCT" % path)
    for i in range(case.nl):
        b = ds.GetRasterBand(i + 1)
        check(b.GetDescription() == case.labels[i], "%s band %d: description %r"
              % (path, i + 1, b.GetDescription()))
        check(np.float32(float(b.GetMetadataItem("CANOPY_THRESHOLD"))) == case.thr[i],
              "%s band %d: CANOPY_THRESHOLD %s" % (path, i + 1, b.GetMetadataItem(
                  "CANOPY_THRESHOLD")))
        check(b.GetMetadataItem("CANOPY_MARKER") == ("YES" if case.labels[i] in case.markers
                                                     else "NO"), "%s: CANOPY_MARKER" % path)
    return ds


def check_layout(path, case, bands, compress="DEFLATE", block=None, predictor=None,
                 overviews=0):
    info = gdalinfo(path)
    ist = info["metadata"].get("IMAGE_STRUCTURE", {})
    check(ist.get("COMPRESSION") == compress, "%s: compression %r, want %s"
          % (path, ist.get("COMPRESSION"), compress))
    if bands > 1:
        check(ist.get("INTERLEAVE") == "BAND", "%s: interleave %r" % (path, ist.get("INTERLEAVE")))
    bx, by = block or (min(round16(case.cols), 256), min(round16(case.rows), 256))
    for b in info["bands"]:
        check(b["block"] == [bx, by], "%s: band %d block %s, want %s"
              % (path, b["band"], b["block"], [bx, by]))
        check(len(b.get("overviews", [])) == overviews, "%s: band %d has %d overviews, want %d"
              % (path, b["band"], len(b.get("overviews", [])), overviews))
    ti = tiffinfo(path)
    check("Tile Width: %d Tile Length: %d" % (bx, by) in ti, "%s: tiffinfo tiles:\n%s"
          % (path, ti[:600]))
    scheme = {"DEFLATE": "AdobeDeflate", "LZW": "LZW"}[compress]
    check("Compression Scheme: %s" % scheme in ti, "%s: tiffinfo compression" % path)
    if predictor:
        check(("Predictor: %s" % predictor) in ti, "%s: tiffinfo predictor, want %s"
              % (path, predictor))
    check(ti.count("TIFF Directory at offset") == 1 + overviews,
          "%s: %d TIFF directories, want %d (internal overviews)"
          % (path, ti.count("TIFF Directory at offset"), 1 + overviews))


def check_probs(case, path, float_probs=False):
    ds = check_common(case, path, "probabilities")
    for i in range(case.nl):
        b = ds.GetRasterBand(i + 1)
        a = b.ReadAsArray()
        p = case.probs[:, :, i]
        if float_probs:
            check(a.dtype == np.float32, "%s: not Float32" % path)
            check(math.isnan(b.GetNoDataValue()), "%s: nodata %r, want NaN"
                  % (path, b.GetNoDataValue()))
            check(np.array_equal(a, p, equal_nan=True), "%s band %d: float values differ"
                  % (path, i + 1))
            check(b.GetScale() in (None, 1.0) and b.GetOffset() in (None, 0.0),
                  "%s: Float32 probabilities must not be scaled" % path)
        else:
            check(a.dtype == np.uint8, "%s: not Byte" % path)
            check(b.GetNoDataValue() == 255, "%s: nodata %r" % (path, b.GetNoDataValue()))
            check(abs(b.GetScale() - 1.0 / 255.0) < 1e-12 and b.GetOffset() == 0.0,
                  "%s band %d: scale %r offset %r" % (path, i + 1, b.GetScale(), b.GetOffset()))
            want = expected_bytes(p)
            bad = np.argwhere(a != want)
            check(len(bad) == 0, "%s band %d: %d values differ, first at %s: %d != %d (p=%r)"
                  % (path, i + 1, len(bad), bad[:1].tolist(), a[tuple(bad[0])] if len(bad)
                     else 0, want[tuple(bad[0])] if len(bad) else 0,
                     float(p[tuple(bad[0])]) if len(bad) else 0))
            check(np.all((a == 255) == np.isnan(p)), "%s: nodata where not NaN" % path)
    return ds


def check_masks(case, path):
    ds = check_common(case, path, "masks")
    for i in range(case.nl):
        b = ds.GetRasterBand(i + 1)
        a = b.ReadAsArray()
        check(b.GetNoDataValue() == 255, "%s: nodata %r" % (path, b.GetNoDataValue()))
        want = expected_mask(case, i)
        check(np.array_equal(a, want), "%s band %d (%s): %d mask values differ"
              % (path, i + 1, case.labels[i], int((a != want).sum())))
    return ds


def check_boundary(case, path):
    """p == threshold -> 1, the float just below -> 0 (asserted present)."""
    ds = gdal.Open(path)
    seen_eq = seen_below = False
    for i in range(case.nl):
        p = case.probs[:, :, i]
        a = ds.GetRasterBand(i + 1).ReadAsArray()
        below = np.nextafter(case.thr[i], np.float32(0))
        for (r, c) in np.argwhere(p == case.thr[i]):
            seen_eq = True
            check(a[r, c] == 1, "%s: p == threshold at (%d,%d) must be 1" % (path, r, c))
        for (r, c) in np.argwhere(p == below):
            seen_below = True
            check(a[r, c] == 0, "%s: p just below threshold at (%d,%d) must be 0" % (path, r, c))
    check(seen_eq and seen_below, "test data lacks boundary values")


def check_overviews(case, probs_path, masks_path):
    """AVERAGE for probabilities, NEAREST for masks, on 2x2 blocks."""
    pds, mds = gdal.Open(probs_path), gdal.Open(masks_path)
    averaged = 0
    for i in range(case.nl):
        base = pds.GetRasterBand(i + 1).ReadAsArray().astype(np.float64)
        ov = pds.GetRasterBand(i + 1).GetOverview(0).ReadAsArray().astype(np.float64)
        mbase = mds.GetRasterBand(i + 1).ReadAsArray()
        mov = mds.GetRasterBand(i + 1).GetOverview(0).ReadAsArray()
        check(ov.shape == ((case.rows + 1) // 2, (case.cols + 1) // 2), "overview shape %s"
              % (ov.shape,))
        check(set(np.unique(mov)) <= {0, 1, 255}, "mask overview has values %s"
              % np.unique(mov))
        for r in range(case.rows // 2):
            for c in range(case.cols // 2):
                blk = base[2 * r:2 * r + 2, 2 * c:2 * c + 2]
                mblk = mbase[2 * r:2 * r + 2, 2 * c:2 * c + 2]
                check(mov[r, c] in set(mblk.ravel()), "mask overview (%d,%d)=%d not from its "
                      "block %s (NEAREST expected)" % (r, c, mov[r, c], mblk.ravel()))
                if np.all(blk != 255):
                    check(abs(ov[r, c] - blk.mean()) <= 1.0, "probs overview (%d,%d)=%g, block "
                          "mean %g (AVERAGE expected)" % (r, c, ov[r, c], blk.mean()))
                    averaged += ov[r, c] not in set(blk.ravel())
    check(averaged > 0, "probs overviews look like NEAREST, not AVERAGE")


def first_marker(case):
    for i, l in enumerate(case.labels):
        if l in case.markers:
            return i
    return 0


def check_qml(case, qml, kind):
    root = ET.parse(qml).getroot()
    check(root.tag == "qgis", "%s: root element %s" % (qml, root.tag))
    rr = root.find("pipe/rasterrenderer")
    check(rr is not None, "%s: no pipe/rasterrenderer" % qml)
    band = first_marker(case) + 1
    check(rr.get("band") == str(band), "%s: renderer band %s, want %d" % (qml, rr.get("band"),
                                                                          band))
    if kind == "probs":
        check(rr.get("type") == "singlebandpseudocolor", "%s: type %s" % (qml, rr.get("type")))
        check(float(rr.get("classificationMin")) == 0 and float(rr.get("classificationMax")) == 1,
              "%s: range" % qml)
        items = rr.findall("rastershader/colorrampshader/item")
        vals = [float(it.get("value")) for it in items]
        check(len(items) >= 2 and vals == sorted(vals) and vals[0] == 0 and vals[-1] == 1,
              "%s: ramp items %s" % (qml, vals))
        for it in items:
            check(len(it.get("color")) == 7 and it.get("color")[0] == "#", "%s: colour" % qml)
    else:
        check(rr.get("type") == "paletted", "%s: type %s" % (qml, rr.get("type")))
        ent = rr.findall("colorPalette/paletteEntry")
        check([e.get("value") for e in ent] == ["0", "1"], "%s: palette values" % qml)
        check(ent[0].get("alpha") == "0" and ent[1].get("alpha") == "255",
              "%s: 0 must be transparent, 1 opaque" % qml)
        check(ent[1].get("label") == case.labels[band - 1], "%s: label %r"
              % (qml, ent[1].get("label")))


def check_split(case, masks_path, split_dir):
    names = sorted(os.listdir(split_dir))
    check(names == sorted([l + ".tif" for l in case.labels] + [l + ".qml" for l in case.labels]),
          "%s holds %s" % (split_dir, names))
    mds = gdal.Open(masks_path)
    for i, l in enumerate(case.labels):
        f = os.path.join(split_dir, l + ".tif")
        ds = gdal.Open(f)
        check(ds.RasterCount == 1 and ds.GetGeoTransform() == case.gt, "%s: shape/gt" % f)
        b = ds.GetRasterBand(1)
        check(b.GetDescription() == l, "%s: description %r" % (f, b.GetDescription()))
        check(np.array_equal(b.ReadAsArray(), mds.GetRasterBand(i + 1).ReadAsArray()),
              "%s differs from band %d of %s" % (f, i + 1, masks_path))
        ctab = b.GetColorTable()
        check(ctab is not None and ctab.GetColorEntry(1) == (227, 26, 28, 255)
              and ctab.GetColorEntry(0)[:3] == (0, 0, 0), "%s: colour table" % f)
        q = ET.parse(os.path.join(split_dir, l + ".qml")).getroot().find("pipe/rasterrenderer")
        ent = q.findall("colorPalette/paletteEntry")
        check(q.get("type") == "paletted" and q.get("band") == "1" and ent[0].get("alpha") == "0"
              and ent[1].get("label") == l, "%s.qml: not a paletted style of band 1" % l)
        check("Photometric Interpretation: palette color" in tiffinfo(f),
              "%s: not a palette TIFF" % f)


# ---- markers ----------------------------------------------------------------

def ring_signed_area(ring):
    s = 0.0
    for (x0, y0), (x1, y1) in zip(ring, ring[1:]):
        s += x0 * y1 - x1 * y0
    return s / 2.0


def polygons_of(geom):
    if geom["type"] == "Polygon":
        return [geom["coordinates"]]
    check(geom["type"] == "MultiPolygon", "geometry type %s" % geom["type"])
    return geom["coordinates"]


def laea_for(case):
    """Equal-area projection centred on the grid, and transforms into it."""
    to_ll = osr.CoordinateTransformation(srs_of(case.epsg), srs_of(4326))
    cx, cy = case.point(case.cols / 2.0, case.rows / 2.0)
    lon, lat = to_ll.TransformPoint(cx, cy)[:2]
    laea = osr.SpatialReference()
    laea.ImportFromProj4("+proj=laea +lat_0=%.12f +lon_0=%.12f +ellps=WGS84 +units=m +no_defs"
                         % (lat, lon))
    laea.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return (osr.CoordinateTransformation(srs_of(case.epsg), laea),
            osr.CoordinateTransformation(srs_of(4326), laea))


def region_reference(case, cells, scene_to_laea):
    """Union of the chip squares of a region, densified, in LAEA."""
    mp = ogr.Geometry(ogr.wkbMultiPolygon)
    for r, c in cells:
        ring = ogr.Geometry(ogr.wkbLinearRing)
        for x, y in case.cell_ring(r, c):
            ring.AddPoint_2D(x, y)
        poly = ogr.Geometry(ogr.wkbPolygon)
        poly.AddGeometry(ring)
        mp.AddGeometry(poly)
    u = mp.UnionCascaded()
    cell = min(abs(case.gt[1]), abs(case.gt[5]))
    u.Segmentize(cell / 16.0)
    u.Transform(scene_to_laea)
    return u


def valid(g):
    return g if g.IsValid() else g.MakeValid()


def check_markers(case, path, n_reported):
    with open(path) as f:
        doc = json.load(f)
    check(doc.get("type") == "FeatureCollection", "%s: not a FeatureCollection" % path)
    check("crs" not in doc, "%s: RFC 7946 forbids a crs member" % path)
    feats = doc["features"]
    check(len(feats) == n_reported, "%s: %d features, writer reported %d"
          % (path, len(feats), n_reported))
    for k, ft in enumerate(feats):
        check(ft["type"] == "Feature", "feature %d type" % k)
        check(set(ft["properties"]) == PROPS, "feature %d properties %s"
              % (k, sorted(ft["properties"])))
        for poly in polygons_of(ft["geometry"]):
            for j, ring in enumerate(poly):
                check(ring[0] == ring[-1] and len(ring) >= 4, "feature %d: ring not closed" % k)
                for lon, lat in ring:
                    check(-180 <= lon <= 180 and -90 <= lat <= 90,
                          "feature %d: (%g, %g) outside lon/lat bounds" % (k, lon, lat))
                a = ring_signed_area(ring)
                check(a > 0 if j == 0 else a < 0, "feature %d: ring %d is %s (RFC 7946: "
                      "exterior counter-clockwise, holes clockwise)" % (k, j, "clockwise"
                                                                       if a < 0 else "ccw"))
        g = ogr.CreateGeometryFromJson(json.dumps(ft["geometry"]))
        check(g.IsValid(), "feature %d: invalid geometry" % k)
        pr = ft["properties"]
        check(pr["scene"] == case.name and pr["model"] == MODEL and pr["run_utc"] == RUN_UTC,
              "feature %d: scene/model/run_utc %r" % (k, pr))

    # OGR reads it too, as EPSG:4326.
    ds = ogr.Open(path)
    lyr = ds.GetLayer(0)
    check(lyr.GetFeatureCount() == len(feats), "OGR feature count")
    check(lyr.GetSpatialRef() is None or lyr.GetSpatialRef().IsSame(srs_of(4326)),
          "OGR reads a CRS other than EPSG:4326")

    # Outline edges are straight in the scene CRS; RFC 7946 readers draw
    # straight lon/lat chords. Every chord's midpoint must lie on the true
    # edge (the writer promises 1 cm; 1e-7 degree rounding adds up to ~1.6
    # cm), except OGR's cuts along the antimeridian and edges at a pole.
    ll_to_scene = osr.CoordinateTransformation(srs_of(4326), srs_of(case.epsg))
    scene_to_ll = osr.CoordinateTransformation(srs_of(case.epsg), srs_of(4326))
    worst = 0.0
    for ft in feats:
        for poly in polygons_of(ft["geometry"]):
            for ring in poly:
                xy = [ll_to_scene.TransformPoint(lon, lat)[:2] for lon, lat in ring]
                for k in range(len(ring) - 1):
                    (lon0, lat0), (lon1, lat1) = ring[k], ring[k + 1]
                    if (abs(lon0) == 180 and abs(lon1) == 180) or abs(lat0) == 90 or \
                            abs(lat1) == 90:
                        continue
                    mx, my = (xy[k][0] + xy[k + 1][0]) / 2, (xy[k][1] + xy[k + 1][1]) / 2
                    tlon, tlat = scene_to_ll.TransformPoint(mx, my)[:2]
                    lon1 = lon0 + (lon1 - lon0 + 180) % 360 - 180
                    dlon = ((lon0 + lon1) / 2 - tlon + 180) % 360 - 180
                    dev = math.hypot(dlon * math.cos(math.radians(tlat)),
                                     (lat0 + lat1) / 2 - tlat) * 111320.0
                    worst = max(worst, dev)
    check(worst <= 0.03, "%s: a lon/lat edge strays %.3g m from the chip outline; edges must "
          "be densified before reprojection" % (path, worst))

    scene_to_laea, ll_to_laea = laea_for(case)
    geoms = []
    for ft in feats:
        g = ogr.CreateGeometryFromJson(json.dumps(ft["geometry"]))
        g.Transform(ll_to_laea)
        geoms.append(valid(g))
    envs = [g.GetEnvelope() for g in geoms]
    used = set()
    total = 0
    for i, label in enumerate(case.labels):
        mine = [k for k, ft in enumerate(feats) if ft["properties"]["label"] == label]
        if label not in case.markers:
            check(not mine, "%s: features for non-marker label %s" % (path, label))
            continue
        lab, n = ndimage.label(case.positive(i), structure=np.ones((3, 3), dtype=int))
        check(len(mine) == n, "%s: %d features for %s, want %d 8-connected regions"
              % (path, len(mine), label, n))
        total += n
        p = case.probs[:, :, i]
        for reg in range(1, n + 1):
            cells = np.argwhere(lab == reg)
            pts = []
            for r, c in cells:
                x, y = case.point(c + 0.6, r + 0.63)
                pts.append(ogr.CreateGeometryFromWkt("POINT (%r %r)" % tuple(
                    scene_to_laea.TransformPoint(x, y)[:2])))
            x0, y0 = pts[0].GetX(), pts[0].GetY()
            hit = [k for k in mine if envs[k][0] <= x0 <= envs[k][1]
                   and envs[k][2] <= y0 <= envs[k][3] and geoms[k].Contains(pts[0])]
            check(len(hit) == 1, "%s: region %d of %s (cells %s) is in %d features"
                  % (path, reg, label, cells[:3].tolist(), len(hit)))
            k = hit[0]
            check(k not in used, "%s: feature %d holds two regions" % (path, k))
            used.add(k)
            for q in pts:
                check(geoms[k].Contains(q), "%s: a chip of region %d of %s lies outside its "
                      "feature" % (path, reg, label))
            pr = feats[k]["properties"]
            vals = p[lab == reg].astype(np.float64)
            check(pr["chips"] == len(cells), "%s: chips %d, want %d" % (path, pr["chips"],
                                                                       len(cells)))
            check(abs(pr["max_prob"] - vals.max()) <= 1e-6, "%s: max_prob %r, want %r"
                  % (path, pr["max_prob"], vals.max()))
            check(abs(pr["mean_prob"] - vals.mean()) <= 1e-6, "%s: mean_prob %r, want %r"
                  % (path, pr["mean_prob"], vals.mean()))
            ref = region_reference(case, cells, scene_to_laea)
            area = ref.GetArea()
            check(abs(pr["area_m2"] - area) <= 1e-5 * area, "%s: area_m2 %.2f, equal-area "
                  "reference %.2f (rel %.2e)" % (path, pr["area_m2"], area,
                                                abs(pr["area_m2"] - area) / area))
            diff = geoms[k].SymDifference(ref).GetArea()
            check(diff <= 1e-4 * area, "%s: outline of region %d of %s differs from its chips "
                  "by %.3g m2 of %.3g" % (path, reg, label, diff, area))
    check(total == len(feats), "%s: %d features, %d regions" % (path, len(feats), total))


# ---- cases ------------------------------------------------------------------

LABELS5 = ["agriculture", "clear", "road", "habitation", "water"]
THR5 = [0.2, 0.5, 0.35, 0.25, 0.6]
MARK5 = {"agriculture", "road", "habitation"}


def utm_case(name="utm", rows=23, cols=37, seed=1):
    rng = np.random.default_rng(seed)
    p = rng.random((rows, cols, 5)).astype(np.float32)
    thr = np.asarray(THR5, dtype=np.float32)
    ag = np.full((rows, cols), 0.1, dtype=np.float32) + 0.09 * rng.random((rows, cols),
                                                                         dtype=np.float32)
    ag[2:5, 2:5] = 0.9                        # ring with a hole
    ag[3, 3] = 0.05
    for r, c in ((8, 2), (9, 3), (10, 4), (10, 5)):  # diagonal chain
        ag[r, c] = 0.7
    ag[0:2, 30:37] = 0.6                      # touches two edges
    ag[20, 20] = thr[0]                       # exactly the threshold: positive
    ag[20, 22] = np.nextafter(thr[0], np.float32(0))  # just below: negative
    ag[12:14, 25:27] = 0.8                    # two blocks meeting at a corner only
    ag[14:17, 27:30] = 0.45
    ag[14, 10:15] = 0.33                      # next to the unclassified block
    p[:, :, 0] = ag
    p[:, :, 3] = 0.1                          # habitation: nothing found
    p[15:19, 10:15, :] = np.nan               # unclassified chips
    for r, c in ((1, 1), (6, 30), (21, 3)):
        p[r, c, :] = np.nan
    # Byte rounding: 0, 1 (clamped to 254), half steps.
    p[5, 8, 1], p[5, 9, 1], p[5, 10, 1] = 0.0, 1.0, np.float32(0.5 / 255)
    p[5, 11, 1], p[5, 12, 1] = np.float32(254.5 / 255), np.float32(100.5 / 255)
    gt = (300000.0, 768.0, 0.0, 8900000.0, 0.0, -768.0)
    return Case(name, 32720, gt, p, LABELS5, THR5, MARK5)


def random_case(name, epsg, gt, rows, cols, seed, thr=(0.7, 0.5, 0.8)):
    rng = np.random.default_rng(seed)
    p = rng.random((rows, cols, 3)).astype(np.float32)
    p[rng.random((rows, cols)) < 0.05, :] = np.nan
    return Case(name, epsg, gt, p, ["agriculture", "cloudy", "road"], thr,
                {"agriculture", "road"})


def antimeridian_case():
    rows, cols = 20, 30
    rng = np.random.default_rng(7)
    p = (0.3 * rng.random((rows, cols, 2))).astype(np.float32)
    p[2:18, 8:22, 0] = 0.9                    # a band across 180 degrees
    p[9:11, 14:16, 0] = 0.1                   # with a hole
    p[:, :, 1] = rng.random((rows, cols))
    gt = (760000.0, 4000.0, 0.0, 8150000.0, 0.0, -4000.0)
    return Case("antimeridian", 32760, gt, p, ["bare_ground", "road"], [0.5, 0.85],
                {"bare_ground", "road"})


def pole_case(name, origin, n, cell):
    rng = np.random.default_rng(11)
    p = (0.3 * rng.random((n, n, 2))).astype(np.float32)
    mid = n // 2
    p[mid - 2:mid + 3, mid - 2:mid + 3, 0] = 0.95   # block over the pole
    p[1:3, 1:4, 0] = 0.9                            # a region away from it
    p[mid - 1, mid - 1, 1] = 0.9                    # one chip next to the pole
    gt = (origin, cell, 0.0, -origin, 0.0, -cell)
    return Case(name, 3031, gt, p, ["slash_burn", "blow_down"], [0.5, 0.5],
                {"slash_burn", "blow_down"})


def listing(d):
    return sorted(os.listdir(d))


def full_check(case, out, float_probs=False, split=False, extra=()):
    opts = list(extra)
    if float_probs:
        opts.append("--float")
    split_dir = os.path.join(out, case.name + ".labels")
    if split:
        opts += ["--split", split_dir]
    n = run_driver(case, out, *opts)
    base = os.path.join(out, case.name)
    want = [case.name + s for s in (".markers.geojson", ".masks.qml", ".masks.tif",
                                    ".probs.qml", ".probs.tif")]
    if split:
        want.append(case.name + ".labels")
    check(listing(out) == sorted(want), "%s: output folder holds %s, want %s"
          % (case.name, listing(out), sorted(want)))
    check_probs(case, base + ".probs.tif", float_probs)
    check_masks(case, base + ".masks.tif")
    check_qml(case, base + ".probs.qml", "probs")
    check_qml(case, base + ".masks.qml", "masks")
    check_markers(case, base + ".markers.geojson", n)
    if split:
        check_split(case, base + ".masks.tif", split_dir)
    return n


def fresh(root, name):
    d = os.path.join(root, name)
    os.mkdir(d)
    return d


def test():
    if not os.access(DRIVER, os.X_OK):
        raise RuntimeError("%s is not built (make check builds it)" % DRIVER)
    with ct.tmpdir() as root:
        # UTM 20S: everything, Byte probabilities, per-label files.
        c = utm_case()
        out = fresh(root, "utm")
        n = full_check(c, out, split=True)
        check(n > 0, "UTM case found no markers")
        check_boundary(c, os.path.join(out, "utm.masks.tif"))
        check_layout(os.path.join(out, "utm.probs.tif"), c, c.nl,
                     predictor="horizontal differencing 2")
        check_layout(os.path.join(out, "utm.masks.tif"), c, c.nl)
        feats = json.load(open(os.path.join(out, "utm.markers.geojson")))["features"]
        diag = [f for f in feats if f["properties"]["label"] == "agriculture"
                and f["properties"]["chips"] == 13]
        check(len(diag) == 1 and diag[0]["geometry"]["type"] == "MultiPolygon",
              "the two blocks meeting at a corner must be one MultiPolygon feature")
        holed = [f for f in feats if f["properties"]["label"] == "agriculture"
                 and f["properties"]["chips"] == 8]
        check(len(holed) == 1 and len(holed[0]["geometry"]["coordinates"]) == 2,
              "the ring of chips must be one polygon with one hole")

        # Float32 probabilities.
        c = utm_case("utmfloat", seed=2)
        out = fresh(root, "float")
        full_check(c, out, float_probs=True)
        check_layout(os.path.join(out, "utmfloat.probs.tif"), c, c.nl,
                     predictor="floating point predictor 3")

        # -co overrides defaults: small tiles (hence internal overviews), LZW.
        c = utm_case("utmco", rows=24, cols=36, seed=3)  # even: 2x2 overview windows
        out = fresh(root, "co")
        full_check(c, out, extra=["--co", "BLOCKXSIZE=16", "--co", "BLOCKYSIZE=16",
                                  "--co", "COMPRESS=LZW"])
        for f in ("utmco.probs.tif", "utmco.masks.tif"):
            check_layout(os.path.join(out, f), c, c.nl, compress="LZW", block=(16, 16),
                         overviews=2)
        check_overviews(c, os.path.join(out, "utmco.probs.tif"),
                        os.path.join(out, "utmco.masks.tif"))

        # COG, large enough for overviews.
        from osgeo_utils.samples import validate_cloud_optimized_geotiff as cogv
        c = random_case("cog", 32720, (200000.0, 512.0, 0.0, 8800000.0, 0.0, -512.0),
                        140, 300, 5, thr=(0.995, 0.5, 0.998))
        out = fresh(root, "cog")
        full_check(c, out, extra=["--cog"])
        for f in ("cog.probs.tif", "cog.masks.tif"):
            path = os.path.join(out, f)
            ist = gdalinfo(path)["metadata"].get("IMAGE_STRUCTURE", {})
            check(ist.get("LAYOUT") == "COG", "%s: LAYOUT %r" % (path, ist.get("LAYOUT")))
            warnings, errors, _ = cogv.validate(path, full_check=True)
            check(not errors, "%s: COG validator: %s" % (path, errors))
            ds = gdal.Open(path)
            check(ds.GetRasterBand(1).GetOverviewCount() == 1 and
                  ds.GetRasterBand(1).GetBlockSize() == [256, 256],
                  "%s: overviews %d, block %s" % (path, ds.GetRasterBand(1).GetOverviewCount(),
                                                  ds.GetRasterBand(1).GetBlockSize()))

        # Geographic and Web Mercator grids.
        full_check(random_case("geo", 4326, (-62.0, 0.01, 0.0, -3.0, 0.0, -0.01), 20, 30, 8),
                   fresh(root, "geo"))
        full_check(random_case("merc", 3857, (-6900000.0, 1000.0, 0.0, -300000.0, 0.0, -1000.0),
                               25, 25, 9), fresh(root, "merc"))

        # Across the antimeridian (UTM 60S): the crossing region is split.
        c = antimeridian_case()
        to_ll = osr.CoordinateTransformation(srs_of(c.epsg), srs_of(4326))
        lons = [to_ll.TransformPoint(*c.point(x, 10))[0] for x in (0, c.cols)]
        check(lons[0] > 170 and lons[1] < -170, "antimeridian grid spans %s" % lons)
        out = fresh(root, "am")
        full_check(c, out)
        feats = json.load(open(os.path.join(out, "antimeridian.markers.geojson")))["features"]
        band = [f for f in feats if f["properties"]["label"] == "bare_ground"]
        check(len(band) == 1 and band[0]["geometry"]["type"] == "MultiPolygon",
              "the region across 180 degrees must be one feature split in two")

        # Around the south pole: pole inside a chip, and on a chip corner.
        for name, origin, n in (("pole", -525000.0, 21), ("polecorner", -500000.0, 20)):
            c = pole_case(name, origin, n, 50000.0)
            out = fresh(root, name)
            full_check(c, out)
            feats = json.load(open(os.path.join(out, name + ".markers.geojson")))["features"]
            lats = [pt[1] for f in feats for poly in polygons_of(f["geometry"])
                    for pt in poly[0]]
            check(min(lats) == -90, "%s: no feature reaches the pole" % name)

        # Nothing found: an empty FeatureCollection, all-zero masks.
        c = utm_case("empty", seed=4)
        c.probs[:, :, 0] = np.minimum(c.probs[:, :, 0], 0.1)
        c.probs[:, :, 2] = np.minimum(c.probs[:, :, 2], 0.3)
        out = fresh(root, "empty")
        check(full_check(c, out) == 0, "empty case wrote features")
        doc = json.load(open(os.path.join(out, "empty.markers.geojson")))
        check(doc["type"] == "FeatureCollection" and doc["features"] == [],
              "empty case: %r" % doc)

        # -co TILED=NO: strips, and no tile-size defaults forced on them.
        c = random_case("strips", 32720, (200000.0, 512.0, 0.0, 8800000.0, 0.0, -512.0),
                        20, 30, 13)
        out = fresh(root, "strips")
        run_driver(c, out, "--co", "TILED=NO")
        check_probs(c, os.path.join(out, "strips.probs.tif"))
        ti = tiffinfo(os.path.join(out, "strips.probs.tif"))
        check("Tile Width" not in ti and "Rows/Strip" in ti, "TILED=NO still tiled:\n" + ti[:400])

        # A bad creation option: exit 1 naming it, nothing written.
        out = fresh(root, "badco")
        p = run_driver(utm_case("badco"), out, "--co", "NO_SUCH_OPTION=1", expect_fail=True)
        check("NO_SUCH_OPTION" in p.stderr and "badco.probs.tif" in p.stderr,
              "bad -co message: %s" % p.stderr)
        check(listing(out) == [], "bad -co left %s" % listing(out))

        # SHA-256 across the 1 MiB read blocks, against hashlib.
        rng = np.random.default_rng(12)
        for size in (0, 1, (1 << 20) - 1, 1 << 20, (1 << 20) + 1, 3 * (1 << 20) + 17):
            f = os.path.join(root, "sha.bin")
            data = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
            with open(f, "wb") as fh:
                fh.write(data)
            got = ct.run([DRIVER, "sha256", f]).stdout.strip()
            check(got == hashlib.sha256(data).hexdigest(), "sha256 of %d bytes: %s" % (size, got))


if __name__ == "__main__":
    ct.main(test)
