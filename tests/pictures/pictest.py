"""Shared fixtures of the pictures tests: synthetic scenes (GDAL), the
markers GeoJSON and manifest canopy classify would write beside them, and the
documented palette (README, "Quick-looks")."""
import json
import os
import subprocess

import numpy as np
from osgeo import gdal, ogr, osr

import canopytest as ct

gdal.UseExceptions()
ogr.UseExceptions()

PROBE = os.path.join(ct.BUILDDIR, "tests", "pictures", "pictures-probe")

# The documented colours (Paul Tol's "muted"), per default marker label.
PALETTE = {
    "agriculture": (0xDD, 0xCC, 0x77),
    "artisinal_mine": (0x88, 0x22, 0x55),
    "bare_ground": (0x99, 0x99, 0x33),
    "blow_down": (0x44, 0xAA, 0x99),
    "conventional_mine": (0xAA, 0x44, 0x99),
    "cultivation": (0x11, 0x77, 0x33),
    "habitation": (0x33, 0x22, 0x88),
    "road": (0x88, 0xCC, 0xEE),
    "selective_logging": (0x44, 0xAA, 0x99),
    "slash_burn": (0xCC, 0x66, 0x77),
}
MARKERS = ["agriculture", "artisinal_mine", "bare_ground", "blow_down", "conventional_mine",
           "cultivation", "habitation", "road", "selective_logging", "slash_burn"]
MAGENTA_BOX = (0.55, 0.15, 0.9, 0.45)  # x0, y0, x1, y1 as fractions of the scene


def make_scene(path, width, height, epsg=32721, origin=(600000.0, 8950000.0), pixel=3.0,
               wkt=None, overviews=False, seed=1):
    """A 3-band Byte scene: grey noise (R = G = B), and a box whose red and
    blue are high and green low, which the stretch turns magenta."""
    rng = np.random.default_rng(seed)
    grey = rng.integers(60, 140, size=(height, width), dtype=np.uint8)
    bands = [grey.copy(), grey.copy(), grey.copy()]
    x0, y0, x1, y1 = MAGENTA_BOX
    box = (slice(int(y0 * height), int(y1 * height)), slice(int(x0 * width), int(x1 * width)))
    bands[0][box] = 250
    bands[1][box] = 5
    bands[2][box] = 250
    ds = gdal.GetDriverByName("GTiff").Create(path, width, height, 3, gdal.GDT_Byte,
                                              ["TILED=YES", "COMPRESS=DEFLATE"])
    ds.SetGeoTransform((origin[0], pixel, 0, origin[1], 0, -pixel))
    srs = osr.SpatialReference()
    if wkt:
        srs.ImportFromWkt(wkt)
    else:
        srs.ImportFromEPSG(epsg)
    ds.SetProjection(srs.ExportToWkt())
    for i, b in enumerate(bands):
        ds.GetRasterBand(i + 1).WriteArray(b)
    if overviews:
        ds.BuildOverviews("AVERAGE", [2, 4, 8])
    ds = None
    return path


def scene_rect_lonlat(scene, fx0, fy0, fx1, fy1):
    """The rectangle (fractions of the scene) as a lon/lat polygon ring,
    densified (through OSR: an independent transform)."""
    ds = gdal.Open(scene)
    gt = ds.GetGeoTransform()
    w, h = ds.RasterXSize, ds.RasterYSize
    src = osr.SpatialReference(wkt=ds.GetProjection())
    dst = osr.SpatialReference()
    dst.ImportFromEPSG(4326)
    for s in (src, dst):
        s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    tr = osr.CoordinateTransformation(src, dst)
    pts = []
    corners = [(fx0, fy0), (fx0, fy1), (fx1, fy1), (fx1, fy0), (fx0, fy0)]
    for (ax, ay), (bx, by) in zip(corners, corners[1:]):
        for k in range(8):
            t = k / 8
            px, py = (ax + t * (bx - ax)) * w, (ay + t * (by - ay)) * h
            x, y = gt[0] + px * gt[1], gt[3] + py * gt[5]
            lon, lat, _ = tr.TransformPoint(x, y)
            pts.append([round(lon, 7), round(lat, 7)])
    pts.append(pts[0])
    return pts


def write_markers(path, scene, regions, change=None):
    """regions: [(label, (fx0, fy0, fx1, fy1)), ...] -> a markers GeoJSON;
    with change (a list, one per region), NAME.alerts.geojson's "change"."""
    feats = []
    for i, (label, rect) in enumerate(regions):
        props = {"label": label, "chips": 4, "max_prob": 0.9, "mean_prob": 0.8, "scene": "x",
                 "model": "m"}
        if change:
            props = {"label": label, "first_detected": "2024-05-01", "confidence": "low",
                     "change": change[i]}
        feats.append({"type": "Feature",
                      "properties": props,
                      "geometry": {"type": "Polygon",
                                   "coordinates": [scene_rect_lonlat(scene, *rect)]}})
    with open(path, "w") as f:
        json.dump({"type": "FeatureCollection", "features": feats}, f)


def write_manifest(outdir, name, scene, counts, model="test-model", date=None, bands=(1, 2, 3),
                   alerts=None, seconds=1.5):
    """The parts of NAME.manifest.json the pictures read (canopy classify
    writes more)."""
    m = {"inputs": [{"path": os.path.abspath(scene), "size": os.path.getsize(scene),
                     "mtime": "2026-01-01T00:00:00.0Z", "sha256": "0" * 64}],
         "model": {"name": model, "version": "1", "sha256": "0" * 64, "path": "m.onnx"},
         "parameters": {"bands": list(bands), "markers": MARKERS},
         "scene": name, "run_utc": "2026-12-04T10:00:00Z",
         "chips": {"cells": 100, "classified": 96, "partial": 2, "skipped": 4},
         "positive_chips": dict(counts), "marker_features": 0,
         "timings_s": {"total": seconds}}
    if date:
        m["acquisition"] = {"date": date, "source": "filename"}
    if alerts is not None:
        m["alerts"] = alerts
    with open(os.path.join(outdir, name + ".manifest.json"), "w") as f:
        json.dump(m, f, indent=1)


def probe(*args, check=True):
    return ct.run([PROBE] + [str(a) for a in args], check=check, errors="surrogateescape")


def kv(stdout):
    return dict(line.split("=", 1) for line in stdout.splitlines() if "=" in line)


def read_rgb(path):
    ds = gdal.Open(path)
    return np.dstack([ds.GetRasterBand(i + 1).ReadAsArray() for i in range(3)]).astype(int)


def panels(png):
    """The panel rectangles the quick-look records (CANOPY_QUICKLOOK_PANELS)."""
    v = gdal.Open(png).GetMetadataItem("CANOPY_QUICKLOOK_PANELS")
    out = []
    for part in (v or "").split(";"):
        if part:
            out.append(tuple(float(x) for x in part.split(",")))
    return out


def no_temporaries(folder):
    left = [n for n in os.listdir(folder) if ".tmp-" in n or n.startswith(".canopy-")]
    assert not left, "temporary files left in %s: %s" % (folder, left)


def rasterize_boundaries(geojson, png, label=None):
    """Pixels of the quick-look grid that the outlines of the GeoJSON's
    features (of one label) cross, rasterised with GDAL/OGR in the PNG's
    georeferencing: the reference for where the colours must be."""
    ref = gdal.Open(png)
    mem = gdal.GetDriverByName("MEM").Create("", ref.RasterXSize, ref.RasterYSize, 1,
                                              gdal.GDT_Byte)
    mem.SetGeoTransform(ref.GetGeoTransform())
    mem.SetProjection(ref.GetProjection())
    src = ogr.Open(geojson)
    lyr = src.GetLayer(0)
    target = osr.SpatialReference(wkt=ref.GetProjection())
    target.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    wgs = osr.SpatialReference()
    wgs.ImportFromEPSG(4326)
    wgs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    tr = osr.CoordinateTransformation(wgs, target)
    drv = ogr.GetDriverByName("Memory")
    mds = drv.CreateDataSource("b")
    ml = mds.CreateLayer("b", srs=target)
    for f in lyr:
        if label and f.GetField("label") != label:
            continue
        g = f.GetGeometryRef().Clone()
        g.Transform(tr)
        o = ogr.Feature(ml.GetLayerDefn())
        o.SetGeometry(g.Boundary())
        ml.CreateFeature(o)
    gdal.RasterizeLayer(mem, [1], ml, burn_values=[1], options=["ALL_TOUCHED=TRUE"])
    return mem.GetRasterBand(1).ReadAsArray().astype(bool)


def dilate(mask, r):
    out = mask.copy()
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            out |= np.roll(np.roll(mask, dy, 0), dx, 1)
    return out
