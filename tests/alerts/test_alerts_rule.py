"""canopy alerts: the rule on a known-answer series of probabilities rasters
(5 dates): first-detection dates exact, confirmation, dismissal, clouds and
unclassified chips neither confirming nor dismissing, high at once, the
summary lines and per-scene changes (a link planted at a changes file's
name replaced, never written through), late delivery giving the same state,
a scene added twice changing nothing, a parameter change by rebuild. The
expected values are written out here by hand; outputs are read with GDAL/OGR
and areas checked against pyproj's geodesic polygon area."""
import datetime
import json
import os

import numpy as np
from osgeo import ogr, osr
from pyproj import Geod

import alertslib as al
from canopytest import canopy, main, tmpdir

ogr.UseExceptions()
NAN = float("nan")
DATES = [datetime.date(2026, 1, 5) + datetime.timedelta(days=14 * k) for k in range(5)]
# (row, col): label, probabilities at t0..t4 (NaN = not classified), weather
# label at that date or None.
CELLS = {
    "A": ((0, 0), "road", (0.1, 0.1, 0.6, 0.7, 0.7), {}),
    "B": ((0, 2), "road", (0.1, 0.1, 0.6, 0.1, 0.1), {}),
    "C": ((0, 4), "road", (0.1, 0.1, 0.6, 0.0, 0.7), {3: "cloudy"}),
    "D": ((2, 0), "road", (0.8, 0.8, 0.8, 0.8, 0.8), {}),
    "E": ((2, 2), "road", (0.1, 0.8, 0.8, 0.8, 0.8), {}),
    "F": ((2, 4), "road", (0.1, 0.1, 0.95, 0.95, 0.95), {}),
    "G": ((4, 0), "road", (0.1, NAN, 0.1, 0.6, 0.6), {}),
    "H": ((4, 2), "road", (0.1, NAN, 0.6, 0.6, 0.6), {}),
    "I": ((4, 4), "agriculture", (0.1, 0.1, 0.1, 0.5, 0.1), {3: "haze"}),
    "J": ((1, 5), "slash_burn", (0.0, 0.0, 0.5, 0.9, 0.0), {3: "partly_cloudy"}),
}


def probs_at(k):
    p = {lab: np.full((al.ROWS, al.COLS), 0.05) for lab in al.LABELS}
    p["clear"][:] = p["primary"][:] = 0.9
    for (r, c), lab, seq, weather in CELLS.values():
        v = seq[k]
        if np.isnan(v):
            for a in p.values():
                a[r, c] = NAN
            continue
        p[lab][r, c] = v
        if k in weather:
            p[weather[k]][r, c] = 0.9
            p["clear"][r, c] = 0.05
    return p


def write_series(folder):
    paths = []
    for k, d in enumerate(DATES):
        path = os.path.join(folder, "scene_%s.probs.tif" % d.strftime("%Y%m%d"))
        al.write_probs(path, probs_at(k))
        paths.append(path)
    return paths


def value(arr, labels, cell):
    (r, c), lab, _, _ = CELLS[cell]
    return int(arr[labels.index(lab), r, c])


def expect(state, want, when):
    labels, arr = al.read_alerts(state)
    for cell in CELLS:
        got = value(arr, labels, cell)
        exp = want.get(cell, 0)
        assert got == exp, "%s: cell %s (%s): alerts.tif %d, expected %d" % (
            when, cell, CELLS[cell][1], got, exp)
    nonzero = int((arr != 0).sum())
    assert nonzero == len(want), "%s: %d alert cells, expected %d" % (when, nonzero, len(want))


def cell_area(r, c):
    """Geodesic area of grid cell (r, c), independently with pyproj."""
    src = osr.SpatialReference()
    src.ImportFromEPSG(al.EPSG)
    dst = osr.SpatialReference()
    dst.ImportFromEPSG(4326)
    dst.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    src.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    ct = osr.CoordinateTransformation(src, dst)
    x0, dx, _, y0, _, dy = al.GT
    pts = [ct.TransformPoint(x0 + (c + a) * dx, y0 + (r + b) * dy)[:2]
           for a, b in ((0, 0), (1, 0), (1, 1), (0, 1))]
    area, _ = Geod(ellps="WGS84").polygon_area_perimeter([p[0] for p in pts], [p[1] for p in pts])
    return abs(area)


def check_geojson(path, n_expected=None):
    """Valid RFC 7946 output: OGR-valid polygons in lon/lat, area_m2 as
    pyproj measures the polygon. Returns the features' properties."""
    raw = json.load(open(path))
    assert raw["type"] == "FeatureCollection" and "crs" not in raw, path
    props = []
    geod = Geod(ellps="WGS84")
    for f in raw["features"]:
        g = ogr.CreateGeometryFromJson(json.dumps(f["geometry"]))
        assert g.IsValid(), "%s: invalid geometry %s" % (path, f["geometry"])
        ring = f["geometry"]["coordinates"][0]
        for lon, lat in ring:
            assert -180 <= lon <= 180 and -90 <= lat <= 90, (path, lon, lat)
            assert -57 < lon < -55 and -11 < lat < -8, "%s: %g,%g is not where the grid is" % (
                path, lon, lat)
        area, _ = geod.polygon_area_perimeter([p[0] for p in ring], [p[1] for p in ring])
        a = f["properties"]["area_m2"]
        assert abs(abs(area) - a) < 1e-3 * a, "%s: area_m2 %g, pyproj %g" % (path, a, abs(area))
        props.append(f["properties"])
    if n_expected is not None:
        assert len(props) == n_expected, "%s: %d features, expected %d" % (path, len(props),
                                                                           n_expected)
    return props


def add(state, path, *extra):
    p = canopy("alerts", "add", *extra, state, path)
    return p.stderr.strip()


def test():
    d2, d3, d4 = DATES[2], DATES[3], DATES[4]
    with tmpdir() as t:
        paths = write_series(t)
        state = os.path.join(t, "state")
        changes2 = os.path.join(t, "scene_%s.alerts.geojson" % d2.strftime("%Y%m%d"))
        victim = os.path.join(t, "victim")
        with open(victim, "w") as f:
            f.write("not for canopy\n")
        os.symlink(victim, changes2)
        lines = [add(state, p) for p in paths[:3]]
        assert open(victim).read() == "not for canopy\n", "written through a planted link"
        assert not os.path.islink(changes2) and os.path.isfile(changes2), changes2
        assert not [n for n in os.listdir(t) if n.startswith(".canopy-")], os.listdir(t)
        assert "0 new alerts, 0 confirmed, 0 dismissed, 0.0 ha" in lines[0], lines
        assert "0 new alerts, 0 confirmed, 0 dismissed" in lines[1], lines
        ha = sum(cell_area(*CELLS[k][0]) for k in "ABCFJ") / 1e4
        want = "5 new alerts (road, slash_burn), 0 confirmed, 0 dismissed, %.1f ha" % ha
        assert want in lines[2], "expected '%s' in '%s'" % (want, lines[2])
        expect(state, {"A": al.date_conf(2, d2), "B": al.date_conf(2, d2),
                       "C": al.date_conf(2, d2), "F": al.date_conf(3, d2),
                       "J": al.date_conf(2, d2)}, "after t2")
        props = check_geojson(os.path.join(state, "alerts.geojson"), 5)
        f = [p for p in props if p["confidence"] == "high"]
        assert len(f) == 1 and f[0]["first_detected"] == d2.isoformat(), props
        ch = check_geojson(changes2, 5)
        assert all(p["change"] == "new" for p in ch), ch

        line = add(state, paths[3])
        assert "1 new alert (road), 2 confirmed, 0 dismissed" in line, line
        expect(state, {"A": al.date_conf(3, d2), "B": al.date_conf(2, d2),
                       "C": al.date_conf(2, d2), "F": al.date_conf(3, d2),
                       "G": al.date_conf(2, d3), "J": al.date_conf(2, d2)}, "after t3 (clouds)")

        line = add(state, paths[4])
        assert "0 new alerts, 2 confirmed, 1 dismissed" in line, line
        final = {"A": al.date_conf(3, d2), "C": al.date_conf(3, d2), "F": al.date_conf(3, d2),
                 "G": al.date_conf(3, d3), "J": al.date_conf(2, d2)}
        expect(state, final, "after t4")
        ch = check_geojson(os.path.join(t, "scene_%s.alerts.geojson" % d4.strftime("%Y%m%d")), 3)
        got = sorted((p["change"], p["first_detected"], p["label"]) for p in ch)
        assert got == sorted([("dismissed", d2.isoformat(), "road"),
                              ("confirmed", d2.isoformat(), "road"),
                              ("confirmed", d3.isoformat(), "road")]), got
        props = check_geojson(os.path.join(state, "alerts.geojson"), 5)
        g = [p for p in props if p["first_detected"] == d3.isoformat()][0]
        assert g["confidence"] == "confirmed" and g["observations"] == 2 and \
            g["last_observed"] == d4.isoformat(), g
        assert g["scenes"] == ["scene_%s" % d3.strftime("%Y%m%d"),
                               "scene_%s" % d4.strftime("%Y%m%d")], g
        assert g["date_conf"] == al.date_conf(3, d3), g

        # The same scene again: nothing changes, byte for byte.
        files = ("state.json", "alerts.tif", "alerts.geojson", "alerts.qml")
        before = {n: open(os.path.join(state, n), "rb").read() for n in files}
        line = add(state, paths[2])
        assert "already in the alert state" in line, line
        for n in files:
            assert open(os.path.join(state, n), "rb").read() == before[n], \
                "%s changed when a scene was added again" % n

        # Late delivery: any order gives the same state.
        late = os.path.join(t, "late")
        for k in (4, 0, 3, 1, 2):
            add(late, paths[k], "--no-changes")
        l1, a1 = al.read_alerts(state)
        l2, a2 = al.read_alerts(late)
        assert l1 == l2 and np.array_equal(a1, a2), "late delivery gave another alerts.tif"
        key = lambda p: (p["label"], p["first_detected"], p["confidence"], p["observations"],
                         p["area_m2"], p["last_observed"], p["scenes"])
        p1 = sorted(map(key, check_geojson(os.path.join(state, "alerts.geojson"))))
        p2 = sorted(map(key, check_geojson(os.path.join(late, "alerts.geojson"))))
        assert p1 == p2, "late delivery gave other alerts:\n%s\n%s" % (p1, p2)
        s1 = json.load(open(os.path.join(state, "state.json")))
        s2 = json.load(open(os.path.join(late, "state.json")))
        assert [s["id"] for s in s1["scenes"]] == [s["id"] for s in s2["scenes"]] == \
            ["scene_%s" % d.strftime("%Y%m%d") for d in DATES], (s1["scenes"], s2["scenes"])

        # Another parameter, by rebuild: one absence dismisses J.
        canopy("alerts", "rebuild", "--alerts-dismiss", "1", state)
        final.pop("J")
        expect(state, final, "rebuilt with --alerts-dismiss 1")
        assert json.load(open(os.path.join(state, "state.json")))["parameters"]["dismiss"] == 1
        # ... and kept: the next update uses it.
        add(state, paths[1])
        expect(state, final, "after a re-add with the stored parameters")
        assert not [n for n in os.listdir(state) if n.startswith(".tmp-")], os.listdir(state)


if __name__ == "__main__":
    main(test)
