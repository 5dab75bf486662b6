"""NAME.stac.json and collection.json against STAC 1.0.0 (Item and
Collection specifications) and the projection extension v1.1.0, expressed
here as JSON Schemas of our own (python3-jsonschema) plus the checks a schema
cannot say: bbox and geometry agreeing, the footprint against OSR, the
projection fields against GDAL, links resolving."""
import datetime
import json
import os
import urllib.parse

import jsonschema
from osgeo import gdal, osr

import canopytest as ct
import pictest as pt

RFC3339 = {"type": "string",
           "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"}
NUM = {"type": "number"}
LINK = {"type": "object", "required": ["rel", "href"],
        "properties": {"rel": {"type": "string", "minLength": 1},
                       "href": {"type": "string", "minLength": 1},
                       "type": {"type": "string"}, "title": {"type": "string"}}}
PROJ = {  # projection extension v1.1.0 fields
    "proj:epsg": {"type": ["integer", "null"]},
    "proj:wkt2": {"type": ["string", "null"]},
    "proj:shape": {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2},
    "proj:transform": {"type": "array", "items": NUM, "oneOf": [
        {"minItems": 6, "maxItems": 6}, {"minItems": 9, "maxItems": 9}]},
    "proj:bbox": {"type": "array", "items": NUM, "oneOf": [
        {"minItems": 4, "maxItems": 4}, {"minItems": 6, "maxItems": 6}]},
}
MEDIA = {"probs": "image/tiff; application=geotiff", "masks": "image/tiff; application=geotiff",
         "markers": "application/geo+json", "alerts": "application/geo+json",
         "quicklook": "image/png", "manifest": "application/json"}
ROLES = {"probs": "data", "masks": "data", "markers": "data", "alerts": "data",
         "quicklook": "overview", "manifest": "metadata"}
ITEM = {
    "type": "object",
    "required": ["type", "stac_version", "id", "geometry", "bbox", "properties", "links",
                 "assets"],
    "properties": {
        "type": {"const": "Feature"},
        "stac_version": {"const": "1.0.0"},
        "stac_extensions": {"type": "array", "items": {"type": "string", "format": "uri"},
                            "contains": {"const": "https://stac-extensions.github.io/"
                                                  "projection/v1.1.0/schema.json"}},
        "id": {"type": "string", "minLength": 1},
        "collection": {"type": "string"},
        "geometry": {"type": "object", "required": ["type", "coordinates"],
                     "properties": {"type": {"const": "Polygon"},
                                    "coordinates": {"type": "array", "minItems": 1, "items": {
                                        "type": "array", "minItems": 4, "items": {
                                            "type": "array", "minItems": 2, "maxItems": 3,
                                            "items": NUM}}}}},
        "bbox": {"type": "array", "items": NUM, "minItems": 4, "maxItems": 4},
        "properties": {
            "type": "object", "required": ["datetime"],
            "properties": dict(PROJ, datetime={"oneOf": [RFC3339, {"type": "null"}]},
                               start_datetime=RFC3339, end_datetime=RFC3339, created=RFC3339),
            # datetime null requires start and end (STAC 1.0 Item spec)
            "if": {"properties": {"datetime": {"type": "null"}}},
            "then": {"required": ["start_datetime", "end_datetime"]},
            "anyOf": [{"required": ["proj:epsg"], "properties": {"proj:epsg": {"type": "integer"}}},
                      {"required": ["proj:wkt2"], "properties": {"proj:wkt2": {"type": "string"}}}],
        },
        "links": {"type": "array", "items": LINK},
        "assets": {"type": "object", "additionalProperties": {
            "type": "object", "required": ["href"],
            "properties": dict(PROJ, href={"type": "string", "minLength": 1},
                               type={"type": "string"}, title={"type": "string"},
                               roles={"type": "array", "items": {"type": "string"}})}},
    },
}
COLLECTION = {
    "type": "object",
    "required": ["type", "stac_version", "id", "description", "license", "extent", "links"],
    "properties": {
        "type": {"const": "Collection"},
        "stac_version": {"const": "1.0.0"},
        "stac_extensions": {"type": "array", "items": {"type": "string"}},
        "id": {"type": "string", "minLength": 1},
        "title": {"type": "string"},
        "description": {"type": "string", "minLength": 1},
        "license": {"type": "string", "pattern": r"^[\w\-\.\+]+$"},
        "extent": {"type": "object", "required": ["spatial", "temporal"], "properties": {
            "spatial": {"type": "object", "required": ["bbox"], "properties": {
                "bbox": {"type": "array", "minItems": 1, "items": {
                    "type": "array", "items": NUM, "oneOf": [
                        {"minItems": 4, "maxItems": 4}, {"minItems": 6, "maxItems": 6}]}}}},
            "temporal": {"type": "object", "required": ["interval"], "properties": {
                "interval": {"type": "array", "minItems": 1, "items": {
                    "type": "array", "minItems": 2, "maxItems": 2,
                    "items": {"oneOf": [RFC3339, {"type": "null"}]}}}}}}},
        "links": {"type": "array", "items": LINK},
    },
}


def ring_area(ring):
    return sum(a[0] * b[1] - b[0] * a[1] for a, b in zip(ring, ring[1:])) / 2


def check_item(path, scene, name, collection_id, want_epsg):
    item = json.load(open(path))
    jsonschema.validate(item, ITEM)
    assert item["id"] == name
    rels = {}
    for link in item["links"]:
        rels.setdefault(link["rel"], []).append(link["href"])
    for rel in ("self", "root", "parent", "collection"):
        assert rel in rels, "no %s link" % rel
    assert os.path.isabs(rels["self"][0]) and rels["self"][0].endswith("/" + name + ".stac.json")
    assert item["collection"] == collection_id
    # Assets: the outputs beside it, with their media types and roles.
    for key, a in item["assets"].items():
        assert a["type"] == MEDIA[key], (key, a["type"])
        assert ROLES[key] in a["roles"], (key, a["roles"])
        assert not a["href"].startswith(("/", "http")), a["href"]
        assert os.path.isfile(os.path.join(os.path.dirname(path), a["href"])), a["href"]
    assert {"probs", "masks", "markers", "quicklook", "manifest"} <= set(item["assets"]), \
        sorted(item["assets"])
    # Projection fields against GDAL.
    ds = gdal.Open(scene)
    gt = ds.GetGeoTransform()
    p = item["properties"]
    assert p["proj:shape"] == [ds.RasterYSize, ds.RasterXSize], p["proj:shape"]
    assert p["proj:transform"][:6] == [gt[1], gt[2], gt[0], gt[4], gt[5], gt[3]], p["proj:transform"]
    xs = [gt[0], gt[0] + gt[1] * ds.RasterXSize]
    ys = [gt[3], gt[3] + gt[5] * ds.RasterYSize]
    assert p["proj:bbox"] == [min(xs), min(ys), max(xs), max(ys)], p["proj:bbox"]
    assert p.get("proj:epsg") == want_epsg, p.get("proj:epsg")
    if want_epsg is None:
        s = osr.SpatialReference()
        s.ImportFromWkt(p["proj:wkt2"])
        assert s.IsSame(osr.SpatialReference(wkt=ds.GetProjection())), "proj:wkt2 is another CRS"
    probs = gdal.Open(os.path.join(os.path.dirname(path), item["assets"]["probs"]["href"]))
    pg = probs.GetGeoTransform()
    assert item["assets"]["probs"]["proj:shape"] == [probs.RasterYSize, probs.RasterXSize]
    assert item["assets"]["probs"]["proj:transform"][:6] == [pg[1], pg[2], pg[0], pg[4], pg[5], pg[3]]
    # Geometry: closed, counter-clockwise (RFC 7946), bbox = its extent, and
    # the scene's corners transformed independently lie on it.
    ring = item["geometry"]["coordinates"][0]
    assert ring[0] == ring[-1] and ring_area(ring) > 0, "ring not closed or not counter-clockwise"
    lons, lats = [c[0] for c in ring], [c[1] for c in ring]
    assert item["bbox"] == [min(lons), min(lats), max(lons), max(lats)], item["bbox"]
    src = osr.SpatialReference(wkt=ds.GetProjection())
    dst = osr.SpatialReference()
    dst.ImportFromEPSG(4326)
    for s in (src, dst):
        s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    tr = osr.CoordinateTransformation(src, dst)
    for x in xs:
        for y in ys:
            lon, lat, _ = tr.TransformPoint(x, y)
            assert min(abs(lon - c[0]) + abs(lat - c[1]) for c in ring) < 2e-7, (lon, lat)
    # Densified edges: a mid-edge point is on the ring too.
    lon, lat, _ = tr.TransformPoint((xs[0] + xs[1]) / 2, ys[0])
    assert min(abs(lon - c[0]) + abs(lat - c[1]) for c in ring) < 2e-7
    return item


def main():
    with ct.tmpdir() as d:
        out = os.path.join(d, "night run")
        os.mkdir(out)
        scenes = {}
        # A UTM scene with an acquisition date, a geographic one without,
        # and one in a CRS that has no EPSG code.
        custom = ('PROJCS["custom LAEA",GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",'
                  '6378137,298.257223563]],PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433]],'
                  'PROJECTION["Lambert_Azimuthal_Equal_Area"],PARAMETER["latitude_of_center",-5],'
                  'PARAMETER["longitude_of_center",-60],PARAMETER["false_easting",0],'
                  'PARAMETER["false_northing",0],UNIT["metre",1]]')
        specs = [("utm", dict(epsg=32721), "2024-03-05", 32721),
                 ("geo", dict(epsg=4326, origin=(-56.1, -9.4), pixel=0.0001), None, 4326),
                 ("laea", dict(wkt=custom, origin=(10000.0, 20000.0), pixel=5.0), "2023-12-31",
                  None)]
        for name, kw, date, _ in specs:
            scene = pt.make_scene(os.path.join(d, name + ".tif"), 512, 384, **kw)
            scenes[name] = scene
            pt.write_markers(os.path.join(out, name + ".markers.geojson"), scene,
                             [("road", (0.1, 0.1, 0.5, 0.5))])
            for kind in ("probs", "masks"):
                src = gdal.Open(scene)
                gt = src.GetGeoTransform()
                g = gdal.GetDriverByName("GTiff").Create(
                    os.path.join(out, "%s.%s.tif" % (name, kind)), 4, 3, 1, gdal.GDT_Byte)
                g.SetGeoTransform((gt[0], gt[1] * 128, 0, gt[3], 0, gt[5] * 128))
                g.SetProjection(src.GetProjection())
                g = None
            pt.write_manifest(out, name, scene, {"road": 3}, date=date)
        r = ct.canopy("report", out, "-q")
        assert r.stdout == "", r.stdout
        cid = "canopy-night_run"
        items = {}
        for name, _, date, epsg in specs:
            item = check_item(os.path.join(out, name + ".stac.json"), scenes[name], name, cid, epsg)
            p = item["properties"]
            if date:
                assert p["datetime"] is None
                assert p["start_datetime"] == date + "T00:00:00Z"
                assert p["end_datetime"] == date + "T23:59:59Z"
            else:
                assert p["datetime"] == "2026-12-04T10:00:00Z", p["datetime"]
            items[name] = item
        coll = json.load(open(os.path.join(out, "collection.json")))
        jsonschema.validate(coll, COLLECTION)
        assert coll["id"] == cid
        links = [link for link in coll["links"] if link["rel"] == "item"]
        assert sorted(os.path.normpath(link["href"]) for link in links) == \
            sorted(n + ".stac.json" for n in items), links
        assert {link["rel"] for link in coll["links"]} >= {"root", "self", "item"}
        (self_href,) = [link["href"] for link in coll["links"] if link["rel"] == "self"]
        assert urllib.parse.unquote(self_href) == \
            os.path.realpath(os.path.join(out, "collection.json")), self_href
        (bb,) = coll["extent"]["spatial"]["bbox"]
        for item in items.values():
            b = item["bbox"]
            assert bb[0] <= b[0] and bb[1] <= b[1] and bb[2] >= b[2] and bb[3] >= b[3], (bb, b)
        (iv,) = coll["extent"]["temporal"]["interval"]
        assert iv == ["2023-12-31T00:00:00Z", "2026-12-04T10:00:00Z"], iv
        for t in iv:
            datetime.datetime.strptime(t, "%Y-%m-%dT%H:%M:%SZ")
        # An Item the tests break is rejected by the schema: the schema can fail.
        bad = dict(items["utm"])
        bad["properties"] = {k: v for k, v in bad["properties"].items() if k != "start_datetime"}
        try:
            jsonschema.validate(bad, ITEM)
        except jsonschema.ValidationError:
            pass
        else:
            raise AssertionError("the Item schema accepts datetime null without start_datetime")
        pt.no_temporaries(out)


ct.main(main)
