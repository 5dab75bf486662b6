"""Helpers of the monitoring tests: probabilities rasters as canopy classify
writes them (band per label, Byte 0..254 with scale 1/255, nodata 255,
CANOPY_THRESHOLD per band, CANOPY_MARKERS), made here with GDAL."""
import datetime
import os

import numpy as np
from osgeo import gdal, osr

gdal.UseExceptions()

LABELS = ("agriculture", "road", "slash_burn", "cloudy", "haze", "partly_cloudy", "clear",
          "primary")
MARKERS = ("agriculture", "road", "slash_burn")
THRESHOLDS = {"agriculture": 0.3, "road": 0.3, "slash_burn": 0.25, "cloudy": 0.5, "haze": 0.5,
              "partly_cloudy": 0.5, "clear": 0.5, "primary": 0.5}
EPOCH = datetime.date(2014, 12, 31)
# A 6 x 5 grid of 768 m cells in UTM 21S (as canopy classify's chip grid).
EPSG = 32721
GT = (606693.0, 768.0, 0.0, 8952783.0, 0.0, -768.0)
ROWS, COLS = 5, 6


def wkt(epsg):
    s = osr.SpatialReference()
    s.ImportFromEPSG(epsg)
    return s.ExportToWkt()


def write_probs(path, probs, gt=GT, epsg=EPSG, date=None):
    """probs: dict label -> (rows, cols) float array, NaN = not classified
    (missing labels are 0 where any label is classified). Writes path."""
    shape = next(iter(probs.values())).shape
    valid = np.zeros(shape, bool)
    for a in probs.values():
        valid |= ~np.isnan(a)
    d = gdal.GetDriverByName("GTiff").Create(path, shape[1], shape[0], len(LABELS), gdal.GDT_Byte,
                                             options=["COMPRESS=DEFLATE"])
    d.SetGeoTransform(gt)
    d.SetProjection(wkt(epsg))
    d.SetMetadataItem("CANOPY_PRODUCT", "probabilities")
    d.SetMetadataItem("CANOPY_LABELS", ",".join(LABELS))
    d.SetMetadataItem("CANOPY_MARKERS", ",".join(MARKERS))
    if date:
        d.SetMetadataItem("TIFFTAG_DATETIME", date.strftime("%Y:%m:%d 10:00:00"))
    for b, lab in enumerate(LABELS):
        a = probs.get(lab, np.zeros(shape))
        v = np.where(valid & ~np.isnan(a), np.clip(np.rint(np.nan_to_num(a) * 255), 0, 254), 255)
        band = d.GetRasterBand(b + 1)
        band.WriteArray(v.astype(np.uint8))
        band.SetDescription(lab)
        band.SetNoDataValue(255)
        band.SetScale(1 / 255.0)
        band.SetMetadataItem("CANOPY_LABEL", lab)
        band.SetMetadataItem("CANOPY_THRESHOLD", "%g" % THRESHOLDS[lab])
        band.SetMetadataItem("CANOPY_MARKER", "1" if lab in MARKERS else "0")
    d = None


def date_conf(conf, day):
    return conf * 10000 + (day - EPOCH).days


def read_alerts(state_dir):
    """(labels, array (bands, rows, cols)) of DIR/alerts.tif."""
    d = gdal.Open(os.path.join(state_dir, "alerts.tif"))
    labels = [d.GetRasterBand(b + 1).GetDescription() for b in range(d.RasterCount)]
    return labels, d.ReadAsArray().reshape(d.RasterCount, d.RasterYSize, d.RasterXSize)
