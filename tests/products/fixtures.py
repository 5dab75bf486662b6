"""Small Sentinel-2 and PlanetScope products made in the structure of real
deliveries, for the tests of tests/products/.

Sentinel-2 (s2_product): a SAFE_COMPACT product folder
  S2B_MSIL2A_<start>_N<baseline>_R<orbit>_T<tile>_<generation>.SAFE/
    MTD_MSIL2A.xml (or MTD_MSIL1C.xml), manifest.safe
    GRANULE/L2A_T<tile>_A<abs orbit>_<time>/MTD_TL.xml
      IMG_DATA/R10m/T<tile>_<start>_B02_10m.jp2 ... (L2A)
      IMG_DATA/T<tile>_<start>_B02.jp2 ...           (L1C)
      QI_DATA/MSK_CLASSI_B00.jp2                      (L1C, baseline >= 04.00)
      QI_DATA/MSK_CLOUDS_B00.gml                      (L1C, before 04.00)
following ESA's Sentinel-2 Products Specification Document (S2-PDGS-TAS-DI-PSD,
V14.9: product naming, folder layout, the General_Info/Product_Info and
Product_Image_Characteristics elements, the band_id 0..12 numbering of B1..B12
with B8A at 8, the BOA/RADIO_ADD_OFFSET lists from baseline 04.00, the SCL
class list, and the 3-band MSK_CLASSI cloud mask -- opaque clouds, cirrus,
snow -- at 60 m; before 04.00 the GML cloud mask: an eop:Mask of
eop:MaskFeature polygons with maskType OPAQUE or CIRRUS), and the minimal set of elements GDAL's SENTINEL2 driver
page and source name as needed to open a product (PRODUCT_URI, PRODUCT_FORMAT
= SAFE_COMPACT, one Granule/IMAGE_FILE, MTD_TL.xml Tile_Geocoding per
resolution). Band files are lossless JPEG 2000 written by GDAL's JP2OpenJPEG
driver, geometry in MTD_TL.xml (the driver takes it from there).

PlanetScope (planet_scene): <date>_<time>_<sat>_3B_AnalyticMS_SR.tif
(4 bands blue, green, red, NIR, UInt16 surface reflectance x 10000, nodata
0), <...>_3B_udm2.tif (8 bands: clear, snow, shadow, light haze, heavy haze,
cloud, confidence, udm1) and <...>_metadata.json (properties.acquired),
following Planet's product documentation (PSScene assets, "Understanding
PlanetScope Instruments", UDM2 band specification).
"""
import json
import os

import numpy as np
from osgeo import gdal, osr

gdal.UseExceptions()

# band_id of each physical band in the PSD's lists (B8A after B8).
BAND_IDS = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10",
            "B11", "B12"]
# Native resolution of each band, PSD table "Spectral bands".
NATIVE = {"B01": 60, "B02": 10, "B03": 10, "B04": 10, "B05": 20, "B06": 20, "B07": 20,
          "B08": 10, "B8A": 20, "B09": 60, "B10": 60, "B11": 20, "B12": 20}
# L2A: which bands are in each IMG_DATA/Rxxm folder (PSD, Level-2A product).
L2A_RES = {
    10: ["B02", "B03", "B04", "B08"],
    20: ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B8A", "B11", "B12", "SCL"],
    60: ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B8A", "B09", "B11", "B12", "SCL"],
}
L1C_BANDS = BAND_IDS

SCL_NAMES = ["NO_DATA", "SATURATED_OR_DEFECTIVE", "DARK_AREA_PIXELS", "CLOUD_SHADOWS",
             "VEGETATION", "NOT_VEGETATED", "WATER", "UNCLASSIFIED", "CLOUD_MEDIUM_PROBABILITY",
             "CLOUD_HIGH_PROBABILITY", "THIN_CIRRUS", "SNOW"]


def write_jp2(path, arr, gt, epsg):
    """Lossless JP2 of a 2-D (or 3-D band-first) array, georeferenced."""
    arr = np.asarray(arr)
    if arr.ndim == 2:
        arr = arr[None]
    dtype = gdal.GDT_UInt16 if arr.dtype == np.uint16 else gdal.GDT_Byte
    mem = gdal.GetDriverByName("MEM").Create("", arr.shape[2], arr.shape[1], arr.shape[0], dtype)
    mem.SetGeoTransform(gt)
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    mem.SetProjection(srs.ExportToWkt())
    for i in range(arr.shape[0]):
        mem.GetRasterBand(i + 1).WriteArray(arr[i])
    os.makedirs(os.path.dirname(path), exist_ok=True)
    gdal.GetDriverByName("JP2OpenJPEG").CreateCopy(path, mem, options=["REVERSIBLE=YES",
                                                                     "QUALITY=100"])


class S2:
    """What a made product holds, for the tests' references."""


def s2_product(root, level="L2A", baseline="05.09", size10=48, epsg=32633,
               ulx=399960.0, uly=5500020.0, seed=1, offset=-1000, quant=10000,
               scl=None, classi=None, skip_bands=(), skip_mtd_offsets=False,
               mission="S2B", start="20230615T100559", tile="T33UUP", clouds=()):
    """Makes a product folder under root; returns an S2 object with .path
    (the .SAFE folder), .name, .dn {band: {res: array}}, .scl (20 m array),
    .classi (60 m, 3 bands), .offset, .quant. clouds: (type, c0, r0, c1, r1)
    boxes in 60 m pixels for the GML mask of L1C products before 04.00."""
    rng = np.random.default_rng(seed)
    old = float(baseline) < 4.0
    gen = "20230615T130000"
    name = "%s_MSI%s_%s_N%s_R022_%s_%s" % (mission, level, start, baseline.replace(".", ""),
                                         tile, gen)
    safe = os.path.join(root, name + ".SAFE")
    gname = "%s_%s_A032000_%s" % (level, tile, start)
    gdir = os.path.join(safe, "GRANULE", gname)
    p = S2()
    p.path, p.name, p.level, p.baseline = safe, name, level, baseline
    p.offset = 0 if old else offset
    p.quant = quant
    p.dn = {}
    n = {10: size10, 20: size10 // 2, 60: size10 // 6}
    # Digital numbers: 1..12000 (0 is nodata), a few exact zeros as nodata.
    resolutions = [10, 20, 60] if level == "L2A" else None
    if level == "L2A":
        for res in resolutions:
            for b in L2A_RES[res]:
                if b == "SCL":
                    continue
                a = rng.integers(1, 12000, size=(n[res], n[res])).astype(np.uint16)
                p.dn.setdefault(b, {})[res] = a
        if scl is None:
            scl = np.full((n[20], n[20]), 4, np.uint8)
        p.scl = scl.astype(np.uint8)
        scl60 = p.scl[::3, ::3]
    else:
        for b in L1C_BANDS:
            res = NATIVE[b]
            a = rng.integers(1, 12000, size=(n[res], n[res])).astype(np.uint16)
            p.dn[b] = {res: a}
        if classi is None:
            classi = np.zeros((3, n[60], n[60]), np.uint8)
        p.classi = classi.astype(np.uint8)
    # nodata: the first pixel of every band
    for b in p.dn:
        for res in p.dn[b]:
            p.dn[b][res][0, 0] = 0

    stamp = "%s_%s" % (tile, start)
    image_files = []
    for b in p.dn:
        for res, a in p.dn[b].items():
            if b in skip_bands:
                continue
            gt = [ulx, res, 0, uly, 0, -res]
            if level == "L2A":
                rel = "IMG_DATA/R%dm/%s_%s_%dm" % (res, stamp, b, res)
            else:
                rel = "IMG_DATA/%s_%s" % (stamp, b)
            write_jp2(os.path.join(gdir, rel + ".jp2"), a, gt, epsg)
            image_files.append("GRANULE/%s/%s" % (gname, rel))
    if level == "L2A":
        for res, a in ((20, p.scl), (60, scl60)):
            rel = "IMG_DATA/R%dm/%s_SCL_%dm" % (res, stamp, res)
            write_jp2(os.path.join(gdir, rel + ".jp2"), a, [ulx, res, 0, uly, 0, -res], epsg)
            image_files.append("GRANULE/%s/%s" % (gname, rel))
    elif not old:
        write_jp2(os.path.join(gdir, "QI_DATA", "MSK_CLASSI_B00.jp2"), p.classi,
                  [ulx, 60, 0, uly, 0, -60], epsg)
    else:
        os.makedirs(os.path.join(gdir, "QI_DATA"), exist_ok=True)
        with open(os.path.join(gdir, "QI_DATA", "MSK_CLOUDS_B00.gml"), "w") as f:
            f.write(_clouds_gml(clouds, ulx, uly, epsg))
    image_files.sort(key=lambda s: (0 if "R10m" in s or level == "L1C" else 1, s))

    with open(os.path.join(safe, "MTD_MSI%s.xml" % level), "w") as f:
        f.write(_mtd(level, name, baseline, image_files, p.offset, quant,
                     skip_mtd_offsets or old))
    with open(os.path.join(gdir, "MTD_TL.xml"), "w") as f:
        f.write(_mtd_tl(level, epsg, ulx, uly, n))
    with open(os.path.join(safe, "manifest.safe"), "w") as f:
        f.write('<?xml version="1.0" encoding="UTF-8"?>\n<xfdu:XFDU xmlns:xfdu='
                '"urn:ccsds:schema:xfdu:1" version="esa/safe/sentinel/1.1/sentinel-2/msi/'
                'archive_l%s_user_product"/>\n' % level[1:].lower())
    for sub in ("DATASTRIP", "AUX_DATA", "rep_info"):
        os.makedirs(os.path.join(safe, sub), exist_ok=True)
    os.makedirs(os.path.join(gdir, "QI_DATA"), exist_ok=True)
    return p


def _clouds_gml(clouds, ulx, uly, epsg):
    srs = "urn:ogc:def:crs:EPSG::%d" % epsg
    feats = []
    for i, (kind, c0, r0, c1, r1) in enumerate(clouds):
        x0, x1, y0, y1 = ulx + 60 * c0, ulx + 60 * c1, uly - 60 * r0, uly - 60 * r1
        ring = " ".join("%r %r" % xy for xy in ((x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)))
        feats.append(
            '<eop:MaskFeature gml:id="%s.%d"><eop:maskType codeSpace="urn:gs2:S2PDGS:maskType">'
            '%s</eop:maskType><eop:extentOf><gml:Polygon gml:id="%s.%d.Polygon" srsName="%s">'
            '<gml:exterior><gml:LinearRing><gml:posList srsDimension="2">%s</gml:posList>'
            '</gml:LinearRing></gml:exterior></gml:Polygon></eop:extentOf>'
            '<eop:maskedBand xlink:href="B00"/></eop:MaskFeature>'
            % (kind, i, kind, kind, i, srs, ring))
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<eop:Mask xmlns:eop="http://www.opengis.net/'
            'eop/2.0" xmlns:gml="http://www.opengis.net/gml/3.2" xmlns:xlink="http://www.w3.org/'
            '1999/xlink" gml:id="MSK_CLOUDS_B00">\n<gml:boundedBy><gml:Null>Inapplicable'
            '</gml:Null></gml:boundedBy>\n<eop:maskMembers>%s</eop:maskMembers>\n</eop:Mask>\n'
            % "\n".join(feats))


def _mtd(level, name, baseline, image_files, offset, quant, no_offsets):
    l2a = level == "L2A"
    root = "Level-2A_User_Product" if l2a else "Level-1C_User_Product"
    xsd = "User_Product_Level-2A.xsd" if l2a else "User_Product_Level-1C.xsd"
    files = "\n".join("<IMAGE_FILE>%s</IMAGE_FILE>" % s for s in image_files)
    if l2a:
        qv = ("<QUANTIFICATION_VALUES_LIST>\n"
              "<BOA_QUANTIFICATION_VALUE unit=\"none\">%d</BOA_QUANTIFICATION_VALUE>\n"
              "<AOT_QUANTIFICATION_VALUE unit=\"none\">1000.0</AOT_QUANTIFICATION_VALUE>\n"
              "<WVP_QUANTIFICATION_VALUE unit=\"cm\">1000.0</WVP_QUANTIFICATION_VALUE>\n"
              "</QUANTIFICATION_VALUES_LIST>\n" % quant)
        off = "" if no_offsets else (
            "<BOA_ADD_OFFSET_VALUES_LIST>\n" +
            "".join('<BOA_ADD_OFFSET band_id="%d">%d</BOA_ADD_OFFSET>\n' % (i, offset)
                    for i in range(13)) + "</BOA_ADD_OFFSET_VALUES_LIST>\n")
        scl = ("<Scene_Classification_List>\n" +
               "".join("<Scene_Classification_ID><SCENE_CLASSIFICATION_TEXT>SC_%s"
                       "</SCENE_CLASSIFICATION_TEXT><SCENE_CLASSIFICATION_INDEX>%d"
                       "</SCENE_CLASSIFICATION_INDEX></Scene_Classification_ID>\n" % (s, i)
                       for i, s in enumerate(SCL_NAMES)) + "</Scene_Classification_List>\n")
    else:
        qv = "<QUANTIFICATION_VALUE unit=\"none\">%d</QUANTIFICATION_VALUE>\n" % quant
        off = "" if no_offsets else (
            "<Radiometric_Offset_List>\n" +
            "".join('<RADIO_ADD_OFFSET band_id="%d">%d</RADIO_ADD_OFFSET>\n' % (i, offset)
                    for i in range(13)) + "</Radiometric_Offset_List>\n")
        scl = ""
    start = name[11:26]
    iso = "%s-%s-%sT%s:%s:%s.024Z" % (start[0:4], start[4:6], start[6:8], start[9:11],
                                      start[11:13], start[13:15])
    return """<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<n1:%(root)s xmlns:n1="https://psd-14.sentinel2.eo.esa.int/PSD/%(xsd)s" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<n1:General_Info>
<Product_Info>
<PRODUCT_START_TIME>%(iso)s</PRODUCT_START_TIME>
<PRODUCT_STOP_TIME>%(iso)s</PRODUCT_STOP_TIME>
<PRODUCT_URI>%(name)s.SAFE</PRODUCT_URI>
<PROCESSING_LEVEL>Level-%(lv)s</PROCESSING_LEVEL>
<PRODUCT_TYPE>S2MSI%(lv)s</PRODUCT_TYPE>
<PROCESSING_BASELINE>%(baseline)s</PROCESSING_BASELINE>
<GENERATION_TIME>2023-06-15T13:00:00.000000Z</GENERATION_TIME>
<Datatake datatakeIdentifier="G%(mission)s_%(start)s_032000_N%(baseline)s">
<SPACECRAFT_NAME>Sentinel-2B</SPACECRAFT_NAME>
<DATATAKE_SENSING_START>%(iso)s</DATATAKE_SENSING_START>
<SENSING_ORBIT_NUMBER>22</SENSING_ORBIT_NUMBER>
</Datatake>
<Query_Options completeSingleTile="true">
<PRODUCT_FORMAT>SAFE_COMPACT</PRODUCT_FORMAT>
</Query_Options>
<Product_Organisation>
<Granule_List>
<Granule granuleIdentifier="G" imageFormat="JPEG2000">
%(files)s
</Granule>
</Granule_List>
</Product_Organisation>
</Product_Info>
<Product_Image_Characteristics>
<Special_Values><SPECIAL_VALUE_TEXT>NODATA</SPECIAL_VALUE_TEXT><SPECIAL_VALUE_INDEX>0</SPECIAL_VALUE_INDEX></Special_Values>
<Special_Values><SPECIAL_VALUE_TEXT>SATURATED</SPECIAL_VALUE_TEXT><SPECIAL_VALUE_INDEX>65535</SPECIAL_VALUE_INDEX></Special_Values>
%(qv)s%(off)s%(scl)s</Product_Image_Characteristics>
</n1:General_Info>
</n1:%(root)s>
""" % dict(root=root, xsd=xsd, iso=iso, name=name, lv=level[1:], baseline=baseline,
           mission=name[:3], start=start, files=files, qv=qv, off=off, scl=scl)


def _mtd_tl(level, epsg, ulx, uly, n):
    root = "Level-2A_Tile_ID" if level == "L2A" else "Level-1C_Tile_ID"
    sizes = "".join('<Size resolution="%d"><NROWS>%d</NROWS><NCOLS>%d</NCOLS></Size>\n'
                    % (r, n[r], n[r]) for r in (10, 20, 60))
    pos = "".join('<Geoposition resolution="%d"><ULX>%r</ULX><ULY>%r</ULY><XDIM>%d</XDIM>'
                  '<YDIM>-%d</YDIM></Geoposition>\n' % (r, ulx, uly, r, r) for r in (10, 20, 60))
    return """<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<n1:%s xmlns:n1="https://psd-14.sentinel2.eo.esa.int/PSD/S2_PDI_Level-%s_Tile_Metadata.xsd">
<n1:General_Info><SENSING_TIME>2023-06-15T10:05:35.024Z</SENSING_TIME></n1:General_Info>
<n1:Geometric_Info>
<Tile_Geocoding>
<HORIZONTAL_CS_NAME>WGS84 / UTM zone</HORIZONTAL_CS_NAME>
<HORIZONTAL_CS_CODE>EPSG:%d</HORIZONTAL_CS_CODE>
%s%s</Tile_Geocoding>
</n1:Geometric_Info>
</n1:%s>
""" % (root, level[1:], epsg, sizes, pos, root)


def zip_product(p, dest_dir):
    """Zips a .SAFE folder as the Copernicus Data Space delivers it:
    NAME.SAFE.zip? No: NAME.zip holding NAME.SAFE/ (GDAL's SENTINEL2 driver
    page). Returns the zip path."""
    import zipfile
    z = os.path.join(dest_dir, p.name + ".zip")
    base = os.path.dirname(p.path)
    with zipfile.ZipFile(z, "w", zipfile.ZIP_STORED) as zf:
        for dirpath, _, files in os.walk(p.path):
            for fn in sorted(files):
                full = os.path.join(dirpath, fn)
                zf.write(full, os.path.relpath(full, base))
    return z


class Planet:
    pass


def planet_scene(root, w=60, h=44, seed=2, udm=None, epsg=32622, ulx=500000.0,
                 uly=9800000.0, gsd=3.0, sid="20230704_133412_56_24b2", product="AnalyticMS_SR",
                 with_udm=True, with_json=True):
    """A PlanetScope scene: 4-band surface reflectance (blue, green, red,
    NIR; x 10000; nodata 0) + udm2 + metadata.json. Returns a Planet object
    with .path, .udm_path, .dn (4, h, w), .udm (8, h, w)."""
    rng = np.random.default_rng(seed)
    p = Planet()
    base = "%s_3B_%s" % (sid, product)
    p.path = os.path.join(root, base + ".tif")
    p.name = base
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    gt = [ulx, gsd, 0, uly, 0, -gsd]
    if product == "Visual":
        p.dn = rng.integers(1, 255, size=(3, h, w)).astype(np.uint8)
    else:
        p.dn = rng.integers(1, 9000, size=(4, h, w)).astype(np.uint16)
    p.dn[:, 0, 0] = 0
    drv = gdal.GetDriverByName("GTiff")
    ds = drv.Create(p.path, w, h, p.dn.shape[0],
                    gdal.GDT_Byte if product == "Visual" else gdal.GDT_UInt16)
    ds.SetGeoTransform(gt)
    ds.SetProjection(srs.ExportToWkt())
    for i in range(p.dn.shape[0]):
        b = ds.GetRasterBand(i + 1)
        b.WriteArray(p.dn[i])
        if product != "Visual":
            b.SetNoDataValue(0)
        else:
            b.SetColorInterpretation([gdal.GCI_RedBand, gdal.GCI_GreenBand, gdal.GCI_BlueBand][i])
    ds = None
    if udm is None:
        udm = np.zeros((8, h, w), np.uint8)
        udm[0] = 1
        udm[6] = 90
    p.udm = udm
    p.udm_path = os.path.join(root, "%s_3B_udm2.tif" % sid)
    if with_udm:
        ds = drv.Create(p.udm_path, w, h, 8, gdal.GDT_Byte)
        ds.SetGeoTransform(gt)
        ds.SetProjection(srs.ExportToWkt())
        for i, d in enumerate(["clear", "snow", "shadow", "haze_light", "haze_heavy", "cloud",
                               "confidence", "udm1"]):
            b = ds.GetRasterBand(i + 1)
            b.WriteArray(udm[i])
            b.SetDescription(d)
        ds = None
    if with_json:
        with open(os.path.join(root, "%s_metadata.json" % sid), "w") as f:
            json.dump({"id": sid, "type": "Feature", "properties": {
                "acquired": "2023-07-04T13:34:12.561Z", "item_type": "PSScene",
                "cloud_cover": 0.1, "sun_elevation": 55.2, "gsd": 3.9}}, f)
    return p


def dump(product, out_dir, *args, size=16, check=True):
    """Runs product_dump (cnp_product_open + the tiler) on a product.
    Returns (json, chips (n, C, S, S) float32) or, with check=False and a
    failure, (None, stderr)."""
    import subprocess
    exe = os.path.join(os.environ.get("CANOPY_BUILDDIR", "."), "tests", "products",
                       "product_dump")
    f32 = os.path.join(out_dir, "chips.f32")
    args = ["--chip", size, "--size", size] + list(args)
    p = subprocess.run([exe, product, f32] + [str(a) for a in args], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        if check:
            raise AssertionError("product_dump %s %s failed: %s" % (product, args, p.stderr))
        return None, p.stderr
    j = json.loads(p.stdout)
    C = len(j["product"]["bands"])
    a = np.fromfile(f32, np.float32)
    return j, a.reshape(-1, C, size, size)


def gdal_read(path):
    """A raster read by GDAL alone (the JP2 driver, not the SENTINEL2
    driver): the independent reference for a band file."""
    return gdal.Open(path).ReadAsArray()


def band_file(p, band, res):
    """Path of a band's JP2 in a made product."""
    import glob
    pat = ("IMG_DATA/R%dm/*_%s_%dm.jp2" % (res, band, res) if p.level == "L2A"
           else "IMG_DATA/*_%s.jp2" % band)
    hits = glob.glob(os.path.join(p.path, "GRANULE", "*", pat))
    assert len(hits) == 1, (band, res, hits)
    return hits[0]
