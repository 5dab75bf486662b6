"""Synthetic scenes for the tests (one home, tests/lib/): georeferenced
GeoTIFFs written with GDAL from arrays, and smooth random textures so that
chips differ. Used by tests/scene, tests/plugin and tests/batch.
"""
import numpy as np
from osgeo import gdal, osr

gdal.UseExceptions()


def make_scene(path, arr, gt, epsg, dtype=gdal.GDT_Byte, nodata=None, alpha=False, options=None,
               mask=None):
    """A GeoTIFF from arr (bands, h, w); epsg None leaves it without a CRS;
    mask (h, w) becomes a per-dataset mask band."""
    bands, h, w = arr.shape
    opts = list(options or [])
    if alpha:
        opts += ["ALPHA=YES", "PHOTOMETRIC=RGB"]
    ds = gdal.GetDriverByName("GTiff").Create(path, w, h, bands, dtype, opts)
    ds.SetGeoTransform(gt)
    if epsg:
        srs = osr.SpatialReference()
        srs.ImportFromEPSG(epsg)
        ds.SetProjection(srs.ExportToWkt())
    for b in range(bands):
        band = ds.GetRasterBand(b + 1)
        band.WriteArray(arr[b])
        if nodata is not None:
            band.SetNoDataValue(nodata)
    if mask is not None:
        ds.CreateMaskBand(gdal.GMF_PER_DATASET)
        ds.GetRasterBand(1).GetMaskBand().WriteArray(mask)
    ds = None


def texture(seed, bands, h, w, lo=0, hi=255, dtype=np.uint8):
    """Smooth random patterns plus noise, so that chips differ."""
    rng = np.random.default_rng(seed)
    out = np.empty((bands, h, w), np.float64)
    yy, xx = np.mgrid[0:h, 0:w]
    for b in range(bands):
        f = np.zeros((h, w))
        for _ in range(4):
            kx, ky = rng.uniform(0.002, 0.05, 2)
            f += np.sin(xx * kx + rng.uniform(0, 6)) * np.cos(yy * ky + rng.uniform(0, 6))
        f = (f - f.min()) / (np.ptp(f) + 1e-9)
        f += 0.15 * rng.standard_normal((h, w))
        out[b] = lo + (hi - lo) * np.clip(f, 0, 1)
    return np.round(out).astype(dtype)
