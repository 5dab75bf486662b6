"""demo_scenes -- procedural Amazon-like scenes and chips for canopy's demo.

Used by scripts/make-demo-data (and its tests). Nothing here reads real
imagery: every scene is drawn from a seeded numpy Generator, so the same seed
gives the same pixels on every machine.

How a picture is made
  1. A *plan* lists what is on the ground: polygons and buffered lines in
     pixel coordinates (x right, y down), each with a land-cover class and a
     surface reflectance (red, green, blue, near-infrared), plus blooming
     zones, smoke plumes, a cloud field and a haze field.
  2. render() burns the plan into a class map with GDAL's rasterizer (later
     features cover earlier ones), colours it, adds textures (tree crowns,
     crop rows, grain, low-frequency tone), cloud shadows, smoke, clouds and
     haze, and returns surface reflectance per band plus the class map, cloud
     opacity and haze strength.
  3. chip_tags() turns the class map of a 256 x 256 window into Kaggle labels
     by the fixed rules of LABEL_RULES (below), so the ground truth is what was
     drawn, not what was intended.

Scenes (plan_scene) are laid out as one landscape: a meandering river with
lakes, a highway with a fishbone of side roads lined by fields, a town, a
selective-logging concession, an open-pit mine, alluvial mining along a
tributary, burn scars, a blow-down, blooming trees, a cloud bank and haze.
Chips (plan_chip) are small scenes drawn from a label set sampled from the
statistics of the Kaggle "Planet: Understanding the Amazon from Space"
training labels (constants below).

Pixel values (to_byte / to_uint16):
  Byte   a "visual" product: 8-bit, path radiance added, per-band gain and a
         display gamma, like Planet's visual (RGB) imagery and the Kaggle JPGs.
  UInt16 surface reflectance x 10000, as in Planet's analytic surface
         reflectance (analytic_sr) products.
Band order is red, green, blue, then near-infrared (NIR) when asked for 4
bands -- unlike Planet's analytic order (blue, green, red, NIR), so that
bands 1-3 are RGB in every file this generator writes.
"""
import math

import numpy as np
from osgeo import gdal, ogr, osr
from scipy import ndimage

import canopy_labels

gdal.UseExceptions()
ogr.UseExceptions()

CHIP = 256          # Kaggle chip side in pixels
GSD_M = 3.0         # metres per pixel (Planet PlanetScope-like)

# The 17 Kaggle labels, in Kaggle's spelling (including "artisinal").
LABELS = tuple(canopy_labels.KAGGLE_LABELS)
WEATHER = ("clear", "partly_cloudy", "haze", "cloudy")
MARKERS = tuple(canopy_labels.DEFAULT_MARKERS)
RARE_LABELS = ("artisinal_mine", "bare_ground", "blooming", "blow_down",
               "conventional_mine", "selective_logging", "slash_burn")

# ---------------------------------------------------------------------------
# Label statistics of the Kaggle "Planet: Understanding the Amazon from Space"
# training set (train_v2.csv, 40,479 chips), derived once from that file and
# written here so that canopy never reads it. Tags were taken as sets (a few
# rows repeat a tag). KAGGLE_COOCCURRENCE[i][j] = number of chips carrying
# both LABELS[i] and LABELS[j]; its diagonal is the per-label count, so
# frequency(i) = C[i][i] / KAGGLE_N_CHIPS and P(j | i) = C[i][j] / C[i][i].
# Weather: clear 28431, partly_cloudy 7261, haze 2697, cloudy 2089, and one
# chip with no weather label; no chip has two; cloudy chips have no other tag.
KAGGLE_N_CHIPS = 40479
KAGGLE_COOCCURRENCE = (
    (12315, 38, 225, 32, 22, 9150, 0, 24, 3377, 2737, 672, 2493, 11972, 6034, 65, 119, 2712),  # agriculture
    (38, 339, 40, 0, 0, 307, 0, 4, 18, 29, 5, 27, 324, 110, 6, 0, 299),  # artisinal_mine
    (225, 40, 862, 3, 4, 747, 0, 10, 89, 163, 41, 74, 683, 323, 13, 10, 206),  # bare_ground
    (32, 0, 3, 332, 1, 311, 0, 0, 35, 4, 4, 17, 332, 10, 7, 2, 16),  # blooming
    (22, 0, 4, 1, 98, 85, 0, 0, 8, 3, 0, 13, 98, 2, 1, 2, 3),  # blow_down
    (9150, 307, 747, 311, 85, 28431, 0, 70, 3527, 3090, 0, 0, 27668, 6295, 308, 173, 5502),  # clear
    (0, 0, 0, 0, 0, 0, 2089, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),  # cloudy
    (24, 4, 10, 0, 0, 70, 0, 100, 4, 36, 2, 28, 94, 59, 0, 0, 26),  # conventional_mine
    (3377, 18, 89, 35, 8, 3527, 0, 4, 4477, 895, 202, 748, 4455, 1294, 58, 126, 868),  # cultivation
    (2737, 29, 163, 4, 3, 3090, 0, 36, 895, 3660, 129, 441, 3469, 2786, 13, 41, 915),  # habitation
    (672, 5, 41, 4, 0, 0, 0, 2, 202, 129, 2697, 0, 2670, 394, 5, 3, 613),  # haze
    (2493, 27, 74, 17, 13, 0, 0, 28, 748, 441, 0, 7261, 7175, 1382, 27, 33, 1295),  # partly_cloudy
    (11972, 324, 683, 332, 98, 27668, 0, 94, 4455, 3469, 2670, 7175, 37513, 7728, 340, 209, 7001),  # primary
    (6034, 110, 323, 10, 2, 6295, 0, 59, 1294, 2786, 394, 1382, 7728, 8071, 151, 36, 2125),  # road
    (65, 6, 13, 7, 1, 308, 0, 0, 58, 13, 5, 27, 340, 151, 340, 2, 49),  # selective_logging
    (119, 0, 10, 2, 2, 173, 0, 0, 126, 41, 3, 33, 209, 36, 2, 209, 24),  # slash_burn
    (2712, 299, 206, 16, 3, 5502, 0, 26, 868, 915, 613, 1295, 7001, 2125, 49, 24, 7411),  # water
)
# The most frequent exact tag sets of the same file (count >= 40): together
# 38,587 of the 40,479 chips (95.3 %). The other 4.7 % are drawn from the
# per-weather conditional frequencies above (see sample_tags).
KAGGLE_TOP_TAG_SETS = (
    (13636, "clear primary"),
    (3630, "partly_cloudy primary"),
    (2089, "cloudy"),
    (1850, "clear primary water"),
    (1680, "agriculture clear primary road"),
    (1626, "agriculture clear primary"),
    (1471, "haze primary"),
    (1187, "agriculture clear cultivation primary"),
    (1125, "agriculture clear habitation primary road"),
    (712, "agriculture clear primary water"),
    (692, "agriculture partly_cloudy primary"),
    (595, "partly_cloudy primary water"),
    (527, "agriculture partly_cloudy primary road"),
    (504, "clear primary road water"),
    (472, "clear cultivation primary"),
    (449, "agriculture clear primary road water"),
    (389, "agriculture clear cultivation primary road"),
    (314, "haze primary water"),
    (312, "agriculture cultivation partly_cloudy primary"),
    (282, "agriculture clear cultivation habitation primary road"),
    (261, "clear water"),
    (248, "blooming clear primary"),
    (240, "agriculture clear habitation primary road water"),
    (235, "clear primary road"),
    (227, "agriculture clear cultivation primary water"),
    (196, "agriculture partly_cloudy primary water"),
    (194, "clear habitation primary road"),
    (172, "agriculture haze primary"),
    (169, "agriculture habitation partly_cloudy primary road"),
    (161, "bare_ground clear primary"),
    (145, "agriculture clear habitation primary"),
    (141, "artisinal_mine clear primary water"),
    (136, "clear cultivation primary water"),
    (130, "agriculture haze primary road"),
    (126, "agriculture clear cultivation habitation primary"),
    (123, "agriculture cultivation partly_cloudy primary road"),
    (115, "agriculture partly_cloudy primary road water"),
    (112, "partly_cloudy primary road water"),
    (106, "clear habitation primary road water"),
    (105, "clear primary selective_logging"),
    (103, "agriculture haze primary water"),
    (102, "partly_cloudy primary road"),
    (92, "agriculture clear cultivation primary road water"),
    (89, "clear primary road selective_logging"),
    (86, "agriculture clear habitation primary water"),
    (73, "agriculture cultivation haze primary"),
    (72, "clear habitation primary water"),
    (71, "bare_ground clear"),
    (69, "agriculture clear cultivation habitation primary road water"),
    (69, "agriculture clear road"),
    (64, "clear habitation road"),
    (61, "agriculture cultivation partly_cloudy primary water"),
    (58, "bare_ground clear primary road"),
    (58, "bare_ground clear primary water"),
    (57, "clear cultivation habitation primary"),
    (55, "blow_down clear primary"),
    (55, "agriculture cultivation habitation partly_cloudy primary road"),
    (55, "haze primary road water"),
    (55, "agriculture clear habitation road"),
    (53, "clear cultivation habitation primary water"),
    (52, "cultivation partly_cloudy primary"),
    (46, "agriculture clear"),
    (44, "artisinal_mine clear primary road water"),
    (41, "agriculture haze primary road water"),
    (41, "clear habitation primary"),
    (41, "clear cultivation habitation primary road"),
    (41, "haze primary road"),
)

# ---------------------------------------------------------------------------
# Land-cover classes of the class map.
(FOREST, BLOWDOWN, BLOOM, AGRI, CULT, BARE, BURN, WATER, ARTMINE, MINE,
 ROAD, LOGTRACK, ROOF, SCRUB) = range(14)
N_CLASSES = 14
CLASS_NAMES = ("forest", "blowdown", "bloom", "agriculture", "cultivation",
               "bare", "burn", "water", "artisanal_mine", "mine", "road",
               "logging_track", "roof", "scrub")

# Ground truth of one chip: a land-cover label is present when the pixels of
# its classes that are not under opaque cloud (opacity > CLOUD_OPAQUE) cover
# at least the given fraction of the chip.
LABEL_RULES = (
    ("primary", (FOREST, BLOWDOWN, BLOOM), 0.03),
    ("agriculture", (AGRI,), 0.02),
    ("cultivation", (CULT,), 0.01),
    ("bare_ground", (BARE,), 0.01),
    ("slash_burn", (BURN,), 0.005),
    ("water", (WATER,), 0.005),
    ("artisinal_mine", (ARTMINE,), 0.005),
    ("conventional_mine", (MINE,), 0.01),
    ("road", (ROAD,), 0.003),
    ("selective_logging", (LOGTRACK,), 0.002),
    ("habitation", (ROOF,), 0.001),
    ("blow_down", (BLOWDOWN,), 0.01),
    ("blooming", (BLOOM,), 0.0005),
)
# Weather: cloudy when >= CLOUDY_MIN of the chip is under opaque cloud (and
# then no other label, as in Kaggle); partly_cloudy when >= PARTLY_MIN;
# otherwise haze when the mean haze strength of the clear pixels is
# >= HAZE_MIN; otherwise clear. Exactly one weather label per chip.
CLOUD_OPAQUE = 0.5
CLOUDY_MIN = 0.90
PARTLY_MIN = 0.02
HAZE_MIN = 0.25

# Surface reflectance (red, green, blue, NIR) of the materials, and how much
# a feature's colour may vary around it (fraction, per feature).
MATERIAL = {
    "forest": ((0.032, 0.052, 0.030, 0.33), 0.08),
    "blowdown": ((0.080, 0.090, 0.058, 0.38), 0.12),
    "bloom_white": ((0.42, 0.40, 0.34, 0.42), 0.10),
    "bloom_yellow": ((0.40, 0.34, 0.10, 0.40), 0.10),
    "bloom_pink": ((0.42, 0.22, 0.30, 0.40), 0.10),
    "pasture": ((0.070, 0.092, 0.048, 0.30), 0.18),
    "crop": ((0.060, 0.100, 0.045, 0.42), 0.15),
    "dry_pasture": ((0.130, 0.125, 0.075, 0.27), 0.15),
    "ploughed": ((0.180, 0.135, 0.095, 0.24), 0.15),
    "cultivation": ((0.110, 0.105, 0.065, 0.27), 0.25),
    "laterite": ((0.230, 0.150, 0.100, 0.27), 0.12),
    "grey_soil": ((0.200, 0.185, 0.165, 0.24), 0.12),
    "burn": ((0.034, 0.032, 0.031, 0.07), 0.15),
    "ash": ((0.110, 0.105, 0.100, 0.12), 0.15),
    "river": ((0.075, 0.070, 0.045, 0.035), 0.15),
    "blackwater": ((0.025, 0.030, 0.028, 0.015), 0.15),
    "lake": ((0.040, 0.052, 0.040, 0.020), 0.15),
    "mud_pond": ((0.170, 0.145, 0.090, 0.100), 0.15),
    "green_pond": ((0.080, 0.120, 0.080, 0.060), 0.15),
    "tailings": ((0.320, 0.280, 0.210, 0.300), 0.10),
    "pit_tan": ((0.300, 0.260, 0.210, 0.290), 0.06),
    "pit_grey": ((0.230, 0.220, 0.205, 0.240), 0.06),
    "pit_lake": ((0.050, 0.110, 0.100, 0.030), 0.10),
    "dirt_road": ((0.250, 0.175, 0.125, 0.28), 0.10),
    "paved_road": ((0.130, 0.130, 0.130, 0.16), 0.08),
    "logging_track": ((0.200, 0.160, 0.110, 0.26), 0.12),
    "roof_metal": ((0.480, 0.480, 0.470, 0.42), 0.10),
    "roof_tile": ((0.360, 0.160, 0.110, 0.36), 0.10),
    "roof_blue": ((0.200, 0.260, 0.360, 0.30), 0.10),
    "scrub": ((0.065, 0.085, 0.048, 0.30), 0.12),
}
# Per-class texture amplitudes: tree-crown texture, low-frequency tone, grain.
CROWN_AMP = np.array((0.50, 0.30, 0.10, 0.05, 0.28, 0.08, 0.25, 0.03, 0.10,
                      0.05, 0.04, 0.12, 0.00, 0.30), np.float32)
LOW_AMP = np.array((0.14, 0.10, 0.05, 0.10, 0.12, 0.10, 0.15, 0.10, 0.12,
                    0.06, 0.05, 0.08, 0.05, 0.12), np.float32)
GRAIN_AMP = np.array((0.03, 0.05, 0.05, 0.04, 0.06, 0.07, 0.08, 0.02, 0.06,
                      0.05, 0.05, 0.06, 0.03, 0.05), np.float32)
CLOUD_COLOUR = np.array((0.36, 0.37, 0.39, 0.45), np.float32)
HAZE_COLOUR = np.array((0.17, 0.18, 0.20, 0.15), np.float32)
SMOKE_COLOUR = np.array((0.20, 0.21, 0.24, 0.16), np.float32)
# Visual (Byte) product: value = 255 * ((refl + PATH) / WHITE) ** (1 / GAMMA).
PATH = np.array((0.010, 0.016, 0.028, 0.0), np.float32)
WHITE = np.array((0.42, 0.40, 0.40, 0.75), np.float32)
GAMMA = 1.9


# ---------------------------------------------------------------------------
# Label sampling

def _weather_p(counts):
    total = float(sum(counts))
    return [c / total for c in counts]


def sample_tags(rng, rare_boost=0.0):
    """A plausible Kaggle label set (sorted list of labels). With
    probability `rare_boost`, a set built around one of RARE_LABELS (chosen
    uniformly) with the other labels drawn from their Kaggle frequencies
    given that label; otherwise a set drawn from the Kaggle distribution of
    exact tag sets."""
    idx = {name: i for i, name in enumerate(LABELS)}
    C = KAGGLE_COOCCURRENCE
    land = [name for name in LABELS if name not in WEATHER]
    if rare_boost > 0 and rng.random() < rare_boost:
        r = RARE_LABELS[int(rng.integers(len(RARE_LABELS)))]
        row = C[idx[r]]
        ws = ("clear", "partly_cloudy", "haze")
        w = ws[int(rng.choice(3, p=_weather_p([row[idx[x]] for x in ws])))]
        tags = {r, w}
        for name in land:
            if name != r and rng.random() < row[idx[name]] / row[idx[r]]:
                tags.add(name)
        return sorted(tags)
    u = rng.random() * KAGGLE_N_CHIPS
    for count, tagset in KAGGLE_TOP_TAG_SETS:
        if u < count:
            return tagset.split()
        u -= count
    ws = ("clear", "partly_cloudy", "haze")
    w = ws[int(rng.choice(3, p=_weather_p([C[idx[x]][idx[x]] for x in ws])))]
    row = C[idx[w]]
    tags = {w}
    for name in land:
        if rng.random() < row[idx[name]] / row[idx[w]]:
            tags.add(name)
    return sorted(tags)


# ---------------------------------------------------------------------------
# Geometry helpers (pixel coordinates, x right, y down)

def _wkt_line(pts):
    return "LINESTRING(" + ",".join("%.2f %.2f" % (x, y) for x, y in pts) + ")"


def _wkt_polygon(pts):
    pts = list(pts)
    pts.append(pts[0])
    return "POLYGON((" + ",".join("%.2f %.2f" % (x, y) for x, y in pts) + "))"


def blob(rng, cx, cy, r, irregular=0.25, n=28, aspect=1.0, angle=0.0):
    """Closed irregular outline around (cx, cy) of mean radius r."""
    th = np.linspace(0, 2 * np.pi, n, endpoint=False)
    rad = np.ones(n)
    for k in range(2, 6):
        rad += irregular / k * rng.uniform(-1, 1) * np.cos(k * th + rng.uniform(0, 2 * np.pi))
    rad = r * np.clip(rad, 0.35, None)
    x, y = rad * np.cos(th) * aspect, rad * np.sin(th)
    ca, sa = math.cos(angle), math.sin(angle)
    return list(zip(cx + x * ca - y * sa, cy + x * sa + y * ca))


def scaled(pts, cx, cy, f):
    return [(cx + (x - cx) * f, cy + (y - cy) * f) for x, y in pts]


def rect(cx, cy, w, h, angle):
    ca, sa = math.cos(angle), math.sin(angle)
    out = []
    for dx, dy in ((-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2), (-w / 2, h / 2)):
        out.append((cx + dx * ca - dy * sa, cy + dx * sa + dy * ca))
    return out


def meander(rng, p0, p1, amp, wavelength, step=6.0):
    """A smooth wandering line from p0 to p1: sum of a few sines across the
    straight line, fading to zero at both ends."""
    (x0, y0), (x1, y1) = p0, p1
    L = math.hypot(x1 - x0, y1 - y0)
    n = max(4, int(L / step))
    t = np.linspace(0.0, 1.0, n)
    off = np.zeros(n)
    for k in range(3):
        wl = wavelength * rng.uniform(0.6, 1.4) / (1 + k)
        off += amp / (1 + 1.5 * k) * np.sin(2 * np.pi * t * L / wl + rng.uniform(0, 2 * np.pi))
    off *= np.sin(np.pi * t) ** 0.3
    dx, dy = (x1 - x0) / L, (y1 - y0) / L
    return list(zip(x0 + t * (x1 - x0) - off * dy, y0 + t * (y1 - y0) + off * dx))


def point_along(pts, frac):
    """The point at fraction frac of the length of polyline pts, and the unit
    direction there."""
    p = np.asarray(pts, float)
    seg = np.hypot(*(p[1:] - p[:-1]).T)
    cum = np.concatenate(([0.0], np.cumsum(seg)))
    s = frac * cum[-1]
    i = int(np.clip(np.searchsorted(cum, s) - 1, 0, len(seg) - 1))
    t = (s - cum[i]) / seg[i] if seg[i] > 0 else 0.0
    q = p[i] + t * (p[i + 1] - p[i])
    d = (p[i + 1] - p[i]) / (seg[i] if seg[i] > 0 else 1.0)
    return (float(q[0]), float(q[1])), (float(d[0]), float(d[1]))


def nearest_on(pts, q):
    """Point of polyline vertices pts nearest to q, and its distance."""
    p = np.asarray(pts, float)
    d = np.hypot(p[:, 0] - q[0], p[:, 1] - q[1])
    i = int(np.argmin(d))
    return (float(p[i, 0]), float(p[i, 1])), float(d[i])


def edge_point(rng, W, H, side, lo=0.15, hi=0.85, out=20.0):
    """A point just outside side 0 top, 1 right, 2 bottom, 3 left."""
    u = rng.uniform(lo, hi)
    return ((u * W, -out), (W + out, u * H), (u * W, H + out), (-out, u * H))[side]


# ---------------------------------------------------------------------------
# Plans

class Plan:
    """What to draw on a width x height raster. Features are drawn in the
    order they are added; later ones cover earlier ones."""

    def __init__(self, width, height):
        self.W = width
        self.H = height
        self.features = []   # (class, wkt, buffer width or 0, colour, stripe)
        self.blooms = []     # (cx, cy, r, density, colour)
        self.smoke = []      # (x, y, angle, length, width, strength)
        self.cloud = None    # ("cover", fraction, cell) | ("bank", cx, cy, R)
        self.haze = None     # ("uniform", h) | ("patch", cx, cy, R, h)
        self.haze_floor = 0.0
        self.shadow = (0.0, 0.0)

    def colour(self, rng, material):
        base, var = MATERIAL[material]
        f = 1.0 + var * rng.uniform(-1, 1)
        tint = 1.0 + 0.3 * var * rng.uniform(-1, 1, 4)
        return tuple(float(v) for v in np.asarray(base) * f * tint)

    def polygon(self, rng, cls, pts, material, stripe=None):
        self.features.append((cls, _wkt_polygon(pts), 0.0, self.colour(rng, material), stripe))

    def line(self, rng, cls, pts, width, material):
        self.features.append((cls, _wkt_line(pts), float(width), self.colour(rng, material), None))


# Painters shared by scenes and chips -------------------------------------

def paint_river(plan, rng, p0, p1, width, amp=None, wavelength=None, material=None, cls=WATER):
    amp = amp if amp is not None else rng.uniform(0.5, 1.5) * width * 2.5
    wavelength = wavelength if wavelength is not None else rng.uniform(10, 25) * width
    pts = meander(rng, p0, p1, amp, wavelength, step=max(3.0, width / 3))
    material = material or ("river" if rng.random() < 0.7 else "blackwater")
    plan.line(rng, cls, pts, width, material)
    return pts


def paint_lake(plan, rng, cx, cy, r):
    plan.polygon(rng, WATER, blob(rng, cx, cy, r, 0.35, aspect=rng.uniform(0.6, 1.4),
                                  angle=rng.uniform(0, np.pi)), "lake")


def paint_oxbow(plan, rng, cx, cy, r, width):
    a0 = rng.uniform(0, 2 * np.pi)
    th = np.linspace(a0, a0 + rng.uniform(3.5, 4.8), 20)
    pts = list(zip(cx + r * np.cos(th), cy + r * np.sin(th)))
    plan.line(rng, WATER, pts, width, "lake")


def paint_road(plan, rng, p0, p1, width, curvy=0.0, material=None, cls=ROAD):
    L = math.hypot(p1[0] - p0[0], p1[1] - p0[1])
    pts = meander(rng, p0, p1, curvy * L, L * rng.uniform(0.8, 2.0), step=8.0) if curvy > 0 else [p0, p1]
    plan.line(rng, cls, pts, width, material or ("dirt_road" if width < 7 or rng.random() < 0.6 else "paved_road"))
    return pts


def paint_fields(plan, rng, origin, direction, length, depth, side_range=(-1, 1),
                 start=10.0, clear_p=0.8, road_half=4.0, frontier=None):
    """Lots along a road from `origin` in unit `direction`: rectangles
    `depth` deep on each side, cleared into fields (agriculture) with
    probability clear_p (falling to a third of it towards the far end), some
    as cultivation plots. Returns the far corners of cleared lots (the
    frontier, where burns and plots go)."""
    (ox, oy), (dx, dy) = origin, direction
    nx, ny = -dy, dx
    ends = []
    for side in side_range:
        if side == 0:
            continue
        s = start
        while s < length:
            w = rng.uniform(50, 130)
            if s + w > length:
                break
            p = clear_p * (1.0 - 0.65 * s / length)
            if rng.random() < p:
                d = depth * rng.uniform(0.45, 1.0)
                cs = s + w / 2
                cd = road_half + 2 + d / 2
                cx, cy = ox + dx * cs + nx * side * cd, oy + dy * cs + ny * side * cd
                ang = math.atan2(dy, dx)
                mat = rng.choice(("pasture", "pasture", "crop", "dry_pasture", "ploughed"))
                stripe = (rng.uniform(4, 9), ang + (np.pi / 2 if rng.random() < 0.5 else 0)) \
                    if mat in ("crop", "ploughed") else None
                plan.polygon(rng, AGRI, rect(cx, cy, w - rng.uniform(2, 6), d, ang), str(mat), stripe)
                far = road_half + 2 + d
                ends.append((ox + dx * cs + nx * side * far, oy + dy * cs + ny * side * far))
            s += w
    if frontier is not None:
        frontier.extend(ends)
    return ends


def paint_field_block(plan, rng, x0, y0, x1, y1, angle):
    """Fields tiling an axis-aligned box (rotated tiles, overlapping edges)."""
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    span = math.hypot(x1 - x0, y1 - y0)
    ca, sa = math.cos(angle), math.sin(angle)
    u = -span / 2
    while u < span / 2:
        w = rng.uniform(40, 120)
        v = -span / 2
        while v < span / 2:
            h = rng.uniform(40, 140)
            px = cx + (u + w / 2) * ca - (v + h / 2) * sa
            py = cy + (u + w / 2) * sa + (v + h / 2) * ca
            if x0 - w < px < x1 + w and y0 - h < py < y1 + h:
                mat = str(rng.choice(("pasture", "pasture", "crop", "dry_pasture", "ploughed")))
                stripe = (rng.uniform(4, 9), angle) if mat in ("crop", "ploughed") else None
                plan.polygon(rng, AGRI, rect(px, py, w - 2, h - 2, angle), mat, stripe)
            v += h
        u += w


def paint_cultivation(plan, rng, cx, cy, spread, n):
    for _ in range(n):
        x, y = cx + rng.normal(0, spread), cy + rng.normal(0, spread)
        r = rng.uniform(7, 20)
        plan.polygon(rng, CULT, blob(rng, x, y, r, 0.5, n=8, aspect=rng.uniform(0.6, 1.6),
                                     angle=rng.uniform(0, np.pi)),
                     "cultivation" if rng.random() < 0.7 else "ploughed")


def paint_bare(plan, rng, cx, cy, r):
    plan.polygon(rng, BARE, blob(rng, cx, cy, r, 0.4, aspect=rng.uniform(0.6, 1.5),
                                 angle=rng.uniform(0, np.pi)),
                 "laterite" if rng.random() < 0.7 else "grey_soil")


def paint_burn(plan, rng, cx, cy, r, wind):
    outline = blob(rng, cx, cy, r, 0.45, aspect=rng.uniform(0.7, 1.6), angle=rng.uniform(0, np.pi))
    plan.polygon(rng, BURN, outline, "burn")
    for _ in range(int(rng.integers(1, 4))):
        plan.polygon(rng, BURN, blob(rng, cx + rng.normal(0, r / 3), cy + rng.normal(0, r / 3),
                                     r * rng.uniform(0.12, 0.3), 0.4, n=10), "ash")
    if rng.random() < 0.8:
        plan.smoke.append((cx, cy, wind + rng.normal(0, 0.15), r * rng.uniform(3, 7),
                           r * rng.uniform(0.5, 1.0), rng.uniform(0.3, 0.6)))


def paint_settlement(plan, rng, cx, cy, r, angle, n_roofs, streets=True):
    """A cluster of small bright roofs on a grassy clearing, with a street
    grid aligned to `angle`."""
    plan.polygon(rng, SCRUB, blob(rng, cx, cy, r * 1.05, 0.2), "scrub")
    ca, sa = math.cos(angle), math.sin(angle)
    block = rng.uniform(28, 45)
    if streets:
        k = int(r // block)
        for i in range(-k, k + 1):
            off = i * block
            half = math.sqrt(max(r * r - off * off, 0.0))
            if half < 10:
                continue
            for (ux, uy) in ((ca, sa), (-sa, ca)):
                vx, vy = -uy, ux
                plan.line(rng, ROAD, [(cx + vx * off - ux * half, cy + vy * off - uy * half),
                                      (cx + vx * off + ux * half, cy + vy * off + uy * half)],
                          rng.uniform(2.5, 4.0), "dirt_road")
    placed = 0
    tries = 0
    roof_mat = ("roof_metal", "roof_metal", "roof_tile", "roof_blue")
    while placed < n_roofs and tries < n_roofs * 6:
        tries += 1
        u, v = rng.uniform(-r, r, 2) * 0.92
        if u * u + v * v > (0.92 * r) ** 2:
            continue
        if streets:  # keep roofs along the streets, off the carriageway
            gu = (u / block) - round(u / block)
            if abs(gu) * block < 3.5 or abs(gu) * block > 12:
                continue
        x, y = cx + u * ca - v * sa, cy + u * sa + v * ca
        w, h = rng.uniform(4, 9), rng.uniform(4, 7)
        plan.polygon(rng, ROOF, rect(x, y, w, h, angle), str(rng.choice(roof_mat)))
        placed += 1


def paint_logging(plan, rng, p0, direction, length, road_spine):
    """Selective logging: a spine track (a road when road_spine) with side
    tracks at 35-60 px on alternating sides, log landings at some ends --
    the fishbone pattern of logging in primary forest."""
    dx, dy = direction
    p1 = (p0[0] + dx * length, p0[1] + dy * length)
    spine = meander(rng, p0, p1, length * rng.uniform(0.03, 0.1), length * rng.uniform(0.5, 1.2), step=6)
    if road_spine:
        plan.line(rng, ROAD, spine, rng.uniform(3.5, 5.0), "dirt_road")
    else:
        plan.line(rng, LOGTRACK, spine, rng.uniform(2.5, 3.5), "logging_track")
    s = rng.uniform(10, 30)
    side = 1 if rng.random() < 0.5 else -1
    while s < length - 10:
        (qx, qy), (tx, ty) = point_along(spine, s / length)
        ang = math.atan2(ty, tx) + side * rng.uniform(0.9, 1.5)
        L = rng.uniform(35, 120)
        end = (qx + math.cos(ang) * L, qy + math.sin(ang) * L)
        mid = (qx + math.cos(ang) * L / 2 + rng.normal(0, 4), qy + math.sin(ang) * L / 2 + rng.normal(0, 4))
        plan.line(rng, LOGTRACK, [(qx, qy), mid, end], rng.uniform(2.0, 3.0), "logging_track")
        if rng.random() < 0.5:
            plan.polygon(rng, LOGTRACK, blob(rng, end[0], end[1], rng.uniform(4, 8), 0.3, n=10),
                         "logging_track")
        side = -side
        s += rng.uniform(30, 60)
    return spine


def paint_open_pit(plan, rng, cx, cy, r):
    """Conventional open-pit mine: terraced benches (nested outlines of
    alternating tan and grey), a pit lake, a waste dump."""
    outline = blob(rng, cx, cy, r, 0.25, n=36, aspect=rng.uniform(0.7, 1.3), angle=rng.uniform(0, np.pi))
    dump_a = rng.uniform(0, 2 * np.pi)
    plan.polygon(rng, MINE, blob(rng, cx + math.cos(dump_a) * r * 1.15, cy + math.sin(dump_a) * r * 1.15,
                                 r * rng.uniform(0.4, 0.65), 0.3), "pit_tan")
    n = int(rng.integers(5, 8))
    for k in range(n):
        plan.polygon(rng, MINE, scaled(outline, cx, cy, 1.0 - 0.8 * k / n),
                     "pit_tan" if k % 2 == 0 else "pit_grey")
    if rng.random() < 0.8:
        plan.polygon(rng, MINE, blob(rng, cx, cy, r * 0.12, 0.3, n=16), "pit_lake")
    return outline


def paint_alluvial(plan, rng, river_pts, river_width, f0, f1, n):
    """Artisanal (alluvial) mining: muddy ponds and sand tailings along a
    river between fractions f0 and f1 of its length."""
    for _ in range(n):
        (qx, qy), (tx, ty) = point_along(river_pts, rng.uniform(f0, f1))
        side = 1 if rng.random() < 0.5 else -1
        r = rng.uniform(8, 22)
        off = river_width / 2 + r * rng.uniform(0.5, 1.5)
        cx, cy = qx - ty * side * off, qy + tx * side * off
        plan.polygon(rng, ARTMINE, blob(rng, cx + rng.normal(0, r / 2), cy + rng.normal(0, r / 2),
                                        r * 1.2, 0.4, n=12), "tailings")
        plan.polygon(rng, ARTMINE, blob(rng, cx, cy, r, 0.35, n=14),
                     "mud_pond" if rng.random() < 0.75 else "green_pond")


def paint_blowdown(plan, rng, cx, cy, r, wind, n):
    for _ in range(n):
        d, a = r * math.sqrt(rng.random()), rng.uniform(0, 2 * np.pi)
        x, y = cx + d * math.cos(a), cy + d * math.sin(a)
        plan.polygon(rng, BLOWDOWN, blob(rng, x, y, rng.uniform(2.5, 5), 0.2, n=12,
                                         aspect=rng.uniform(5, 12), angle=wind + rng.normal(0, 0.2)),
                     "blowdown")


def add_bloom(plan, rng, cx, cy, r, density=1 / 180.0):
    plan.blooms.append((cx, cy, r, density, plan.colour(rng, str(rng.choice(
        ("bloom_white", "bloom_yellow", "bloom_pink"))))))


# ---------------------------------------------------------------------------
# Chip plans

def plan_chip(rng, tags, size=CHIP):
    """A size x size plan showing the labels `tags` (Kaggle spelling).
    Ground truth is still computed from the rendering (chip_tags)."""
    S = float(size)
    p = Plan(size, size)
    tags = set(tags)
    wind = rng.uniform(0, 2 * np.pi)
    p.shadow = (math.cos(wind) * rng.uniform(6, 20), math.sin(wind) * rng.uniform(6, 20))

    def inner(m=0.2):
        return rng.uniform(m * S, (1 - m) * S), rng.uniform(m * S, (1 - m) * S)

    def crossing():
        s0 = int(rng.integers(4))
        s1 = (s0 + int(rng.integers(1, 4))) % 4
        return edge_point(rng, S, S, s0), edge_point(rng, S, S, s1)

    if "cloudy" in tags:
        # Something underneath that the clouds hide.
        if rng.random() < 0.4:
            paint_river(p, rng, *crossing(), rng.uniform(6, 30))
        p.cloud = ("cover", rng.uniform(0.97, 1.0), 64.0)
        p.haze_floor = rng.uniform(0.0, 0.1)
        return p

    # Without primary, one land cover fills the chip (base); the other labels
    # are drawn over it as they are over forest.
    base = None
    if "primary" not in tags:
        whole = [(-10, -10), (S + 10, -10), (S + 10, S + 10), (-10, S + 10)]
        if "agriculture" in tags:
            base = "agriculture"
            paint_field_block(p, rng, 0, 0, S, S, rng.uniform(0, np.pi))
        elif "water" in tags and not tags & {"habitation", "bare_ground", "cultivation"}:
            base = "water"
            p.polygon(rng, WATER, whole, "river")
            if rng.random() < 0.6:  # a grassy sandbank
                paint_river(p, rng, *crossing(), rng.uniform(10, 40), material="scrub", cls=SCRUB)
        elif "habitation" in tags:
            base = "habitation"
            p.polygon(rng, SCRUB, whole, "scrub")
            paint_settlement(p, rng, S / 2, S / 2, S * 0.75, rng.uniform(0, np.pi), int(rng.integers(40, 90)))
        elif "bare_ground" in tags:
            base = "bare_ground"
            p.polygon(rng, BARE, whole, "laterite" if rng.random() < 0.6 else "grey_soil")
        elif "cultivation" in tags:
            base = "cultivation"
            p.polygon(rng, SCRUB, whole, "scrub")
            paint_cultivation(p, rng, S / 2, S / 2, S / 3, 25)
        else:
            p.polygon(rng, SCRUB, whole, "scrub")

    road_pts = None
    road_dir = rng.uniform(0, np.pi)
    if "blooming" in tags:
        for _ in range(int(rng.integers(1, 3))):
            add_bloom(p, rng, *inner(0.1), rng.uniform(40, 110))
    if "blow_down" in tags:
        add = int(rng.integers(12, 30))
        paint_blowdown(p, rng, *inner(0.3), rng.uniform(40, 80), wind, add)
    if "road" in tags and "primary" in tags:
        a, b = crossing()
        road_pts = [a, b]
        road_dir = math.atan2(b[1] - a[1], b[0] - a[0])
    if "agriculture" in tags and base != "agriculture":
        if road_pts is not None and rng.random() < 0.8:
            L = math.hypot(road_pts[1][0] - road_pts[0][0], road_pts[1][1] - road_pts[0][1])
            d = ((road_pts[1][0] - road_pts[0][0]) / L, (road_pts[1][1] - road_pts[0][1]) / L)
            paint_fields(p, rng, road_pts[0], d, L, rng.uniform(60, 150), clear_p=rng.uniform(0.6, 1.0))
        else:
            frac = rng.uniform(0.25, 0.7)
            side = int(rng.integers(4))
            x0, y0, x1, y1 = ((0, 0, S, S * frac), (S * (1 - frac), 0, S, S),
                              (0, S * (1 - frac), S, S), (0, 0, S * frac, S))[side]
            paint_field_block(p, rng, x0, y0, x1, y1, road_dir)
    if "cultivation" in tags and base != "cultivation":
        paint_cultivation(p, rng, *inner(0.3), rng.uniform(12, 35), int(rng.integers(3, 9)))
    if "bare_ground" in tags and base != "bare_ground":
        for _ in range(int(rng.integers(1, 3))):
            paint_bare(p, rng, *inner(0.2), rng.uniform(14, 40))
    if "slash_burn" in tags:
        for _ in range(int(rng.integers(1, 3))):
            paint_burn(p, rng, *inner(0.25), rng.uniform(14, 38), wind)
    river = None
    if "water" in tags and base != "water":
        if rng.random() < 0.7 or "artisinal_mine" in tags:
            w = rng.uniform(5, 35)
            river = (paint_river(p, rng, *crossing(), w), w)
        else:
            paint_lake(p, rng, *inner(0.25), rng.uniform(15, 55))
    if "artisinal_mine" in tags:
        if river is None:
            w = rng.uniform(3, 6)
            # a creek turned to mud by the diggings: part of the mine
            river = (paint_river(p, rng, *crossing(), w, material="mud_pond", cls=ARTMINE), w)
        paint_alluvial(p, rng, river[0], river[1], 0.25, 0.75, int(rng.integers(3, 9)))
    if "conventional_mine" in tags:
        cx, cy = inner(0.3)
        paint_open_pit(p, rng, cx, cy, rng.uniform(45, 100))
    if road_pts is not None:
        road_pts = paint_road(p, rng, road_pts[0], road_pts[1], rng.uniform(3.5, 8), curvy=rng.uniform(0, 0.12))
    elif "road" in tags:
        a, b = crossing()
        road_pts = paint_road(p, rng, a, b, rng.uniform(3.5, 7), curvy=rng.uniform(0, 0.1))
    if "selective_logging" in tags:
        a = edge_point(rng, S, S, int(rng.integers(4)))
        c = (S / 2 + rng.normal(0, S / 8), S / 2 + rng.normal(0, S / 8))
        L = math.hypot(c[0] - a[0], c[1] - a[1])
        paint_logging(p, rng, a, ((c[0] - a[0]) / L, (c[1] - a[1]) / L), S * rng.uniform(0.8, 1.2), False)
    if "habitation" in tags and base != "habitation":
        if road_pts is not None:
            (cx, cy), _ = point_along(road_pts, rng.uniform(0.3, 0.7))
        else:
            cx, cy = inner(0.3)
        paint_settlement(p, rng, cx, cy, rng.uniform(30, 75), road_dir, int(rng.integers(8, 40)),
                         streets=rng.random() < 0.6)

    if "partly_cloudy" in tags:
        p.cloud = ("cover", rng.uniform(0.08, 0.6), float(rng.choice((32.0, 64.0, 96.0, 192.0))))
        p.haze_floor = rng.uniform(0.0, 0.12)
    elif "haze" in tags:
        p.haze = ("uniform", rng.uniform(0.3, 0.5))
    else:
        p.haze_floor = rng.uniform(0.0, 0.1)
    return p


# ---------------------------------------------------------------------------
# Scene plans

def plan_scene(rng, W, H):
    """One landscape of W x H pixels (3 m): see the module comment."""
    p = Plan(W, H)
    wind = rng.uniform(0, 2 * np.pi)
    p.shadow = (math.cos(wind) * 18.0, math.sin(wind) * 18.0)
    M = float(min(W, H))
    area = W * H / float(4096 * 4096)

    # Forest texture features first: blooming, blow-down.
    for _ in range(max(1, int(round(2 * area)))):
        add_bloom(p, rng, rng.uniform(0.1, 0.9) * W, rng.uniform(0.1, 0.9) * H, rng.uniform(0.05, 0.08) * M + 60)
    bx, by = rng.uniform(0.15, 0.85) * W, rng.uniform(0.15, 0.85) * H
    paint_blowdown(p, rng, bx, by, min(0.06 * M + 60, 300), wind, int(60 * max(area, 0.25)))

    # Highway: top to bottom, in the east or west half.
    hx = rng.uniform(0.35, 0.65)
    h0, h1 = (hx * W + rng.normal(0, 0.05 * W), -30.0), (hx * W + rng.normal(0, 0.05 * W), H + 30.0)
    L_h = math.hypot(h1[0] - h0[0], h1[1] - h0[1])
    h_dir = ((h1[0] - h0[0]) / L_h, (h1[1] - h0[1]) / L_h)
    highway = [(h0[0] + h_dir[0] * s, h0[1] + h_dir[1] * s) for s in np.linspace(0, L_h, 64)]

    # River: left to right, meandering; a tributary from top or bottom.
    ry = rng.uniform(0.3, 0.7)
    r0, r1 = (-40.0, ry * H + rng.normal(0, 0.05 * H)), (W + 40.0, ry * H + rng.normal(0, 0.05 * H))
    rw = rng.uniform(18, 34)
    # Agriculture along the highway and its side roads (the fishbone).
    frontier = []
    spacing = rng.uniform(300, 480)
    side_roads = []
    s = rng.uniform(60, spacing)
    while s < L_h:
        (qx, qy), (tx, ty) = point_along(highway, s / L_h)
        for side in (-1, 1):
            if rng.random() < 0.85:
                L = rng.uniform(0.12, 0.3) * W
                nx, ny = ty * side, -tx * side
                end = (qx + nx * L, qy + ny * L)
                side_roads.append(((qx, qy), (nx, ny), L, end))
        s += spacing * rng.uniform(0.8, 1.2)
    for (q, n, L, end) in side_roads:
        paint_fields(p, rng, q, n, L, rng.uniform(120, 260), clear_p=0.85, road_half=2.5, frontier=frontier)
    paint_fields(p, rng, h0, h_dir, L_h, rng.uniform(150, 260),
                 clear_p=0.75, road_half=4.0, frontier=frontier)

    # Cultivation plots and burns at the frontier, bare patches.
    order = rng.permutation(len(frontier)) if frontier else []
    n_cult = int(len(frontier) * 0.25)
    for k in order[:n_cult]:
        fx, fy = frontier[k]
        paint_cultivation(p, rng, fx, fy, 25, int(rng.integers(3, 8)))
    n_burn = max(1, int(round(3 * area + 0.5)))
    for k in order[n_cult:n_cult + n_burn]:
        fx, fy = frontier[k]
        paint_burn(p, rng, fx, fy, rng.uniform(30, 60), wind)
    for _ in range(max(1, int(round(4 * area)))):
        (qx, qy), _ = point_along(highway, rng.uniform(0.05, 0.95))
        paint_bare(p, rng, qx + rng.uniform(-120, 120), qy + rng.uniform(-60, 60), rng.uniform(20, 50))

    # Water: river, tributary, lakes.
    river = paint_river(p, rng, r0, r1, rw, amp=rng.uniform(0.04, 0.08) * H, wavelength=rng.uniform(0.25, 0.4) * W)
    tx0 = rng.uniform(0.1, 0.3) * W if hx > 0.5 else rng.uniform(0.7, 0.9) * W
    top = rng.random() < 0.5
    (jx, jy), _ = nearest_on(river, (tx0, H * (0.0 if top else 1.0)))
    trib_w = rng.uniform(7, 12)
    trib = paint_river(p, rng, (tx0 + rng.normal(0, 0.05 * W), -30.0 if top else H + 30.0), (jx, jy), trib_w,
                       amp=rng.uniform(20, 50), wavelength=rng.uniform(150, 300))
    for _ in range(max(1, int(round(2 * area)))):
        (qx, qy), (dx, dy) = point_along(river, rng.uniform(0.1, 0.9))
        side = 1 if rng.random() < 0.5 else -1
        off = rw * rng.uniform(3, 6)
        paint_oxbow(p, rng, qx - dy * side * off, qy + dx * side * off, rng.uniform(40, 90), rw * 0.8)
    lx = rng.uniform(0.1, 0.3) * W if hx > 0.5 else rng.uniform(0.7, 0.9) * W
    ly = (ry + (0.25 if ry < 0.5 else -0.25)) * H
    paint_lake(p, rng, lx, ly, rng.uniform(40, 110))

    # Alluvial mining along the tributary.
    paint_alluvial(p, rng, trib, trib_w, 0.35, 0.85, int(max(6, 14 * math.sqrt(area))))

    # Open-pit mine in forest on the side away from the highway, with an
    # access road to the highway.
    mx = (rng.uniform(0.1, 0.25) if hx > 0.5 else rng.uniform(0.75, 0.9)) * W
    my = (ry + (-0.28 if ry >= 0.5 else 0.28)) * H
    mr = rng.uniform(0.035, 0.05) * M + 60
    if rng.random() < 0.5:
        paint_bare(p, rng, mx, my, mr * 1.35)
    paint_open_pit(p, rng, mx, my, mr)
    (ax, ay), _ = nearest_on(highway, (mx, my))
    paint_road(p, rng, (mx, my), (ax, ay), 6.0, curvy=0.05, material="dirt_road")

    # Selective logging concession: a spine from the end of a side road
    # into the forest beyond the fields, or from the scene's edge.
    far = [sr for sr in side_roads if (sr[3][0] - W / 2) * (mx - W / 2) < 0] or side_roads
    if far and rng.random() < 0.8:
        q, n, L, end = far[int(rng.integers(len(far)))]
        start, d = end, n
    else:
        start = (W + 20.0 if mx < W / 2 else -20.0, rng.uniform(0.2, 0.8) * H)
        d = (-1.0 if mx < W / 2 else 1.0, 0.0)
    paint_logging(p, rng, start, d, min(0.25 * W + 200, 1200.0), True)

    # Roads (drawn over fields and water: bridges).
    for (q, n, L, end) in side_roads:
        paint_road(p, rng, q, end, rng.uniform(4, 5.5), curvy=0.02, material="dirt_road")
    p.line(rng, ROAD, highway, 8.0, "paved_road")

    # Town where the highway crosses the river, a village on the tributary.
    best = min(((nearest_on(river, q)[1], q) for q in highway), key=lambda t: t[0])
    tq = best[1]
    side = 1 if rng.random() < 0.5 else -1
    town_r = rng.uniform(0.025, 0.04) * M + 90
    tcx, tcy = tq[0] + rng.normal(0, 20), tq[1] + side * (rw / 2 + town_r * 0.9)
    paint_settlement(p, rng, tcx, tcy, town_r, rng.uniform(-0.1, 0.1), int(town_r * town_r / 120))
    (vx, vy), (vdx, vdy) = point_along(trib, rng.uniform(0.1, 0.3))
    paint_settlement(p, rng, vx - vdy * (trib_w + 30), vy + vdx * (trib_w + 30), rng.uniform(35, 55),
                     math.atan2(vdy, vdx), int(rng.integers(12, 25)), streets=False)
    paint_cultivation(p, rng, vx - vdy * (trib_w + 80), vy + vdx * (trib_w + 80), 40, 8)

    # Weather: a cloud bank off the corner farthest from the mine and the
    # town, haze off the opposite one.
    corners = [(0.0, 0.0), (W, 0.0), (W, H), (0.0, H)]
    ci = int(np.argmax([min(math.hypot(x - mx, y - my), math.hypot(x - tcx, y - tcy)) for x, y in corners]))
    cx, cy = corners[ci]
    p.cloud = ("bank", cx + rng.normal(0, 0.05 * W), cy + rng.normal(0, 0.05 * H), rng.uniform(0.45, 0.6) * M)
    hx_, hy_ = corners[(ci + 2) % 4]
    p.haze = ("patch", hx_, hy_, rng.uniform(0.4, 0.55) * M, rng.uniform(0.38, 0.5))
    p.haze_floor = 0.03
    return p


# ---------------------------------------------------------------------------
# Rendering

def _interp(g, H, W, cell, oy=0.0, ox=0.0, smooth=True):
    """Grid g sampled at H x W pixels, grid spacing `cell` pixels, offset
    (oy, ox) cells; smoothstep (value noise) or plain bilinear weights."""
    ys = (np.arange(H, dtype=np.float32) + 0.5) / np.float32(cell) + np.float32(oy)
    xs = (np.arange(W, dtype=np.float32) + 0.5) / np.float32(cell) + np.float32(ox)
    y0, x0 = ys.astype(np.int64), xs.astype(np.int64)
    ty, tx = ys - y0, xs - x0
    if smooth:
        ty, tx = ty * ty * (3 - 2 * ty), tx * tx * (3 - 2 * tx)
    rows = g[:, x0] * (1 - tx) + g[:, x0 + 1] * tx          # (gh, W)
    return rows[y0] * (1 - ty)[:, None] + rows[y0 + 1] * ty[:, None]


def value_noise(rng, H, W, cell):
    """Smooth noise in [-1, 1] with features of `cell` pixels."""
    gh, gw = int(math.ceil(H / cell)) + 2, int(math.ceil(W / cell)) + 2
    g = rng.uniform(-1, 1, (gh, gw)).astype(np.float32)
    oy, ox = rng.uniform(0, 1, 2)
    return _interp(g, H, W, cell, oy, ox)


def fbm(rng, H, W, cell, octaves, persistence=0.5):
    """Sum of `octaves` value noises from `cell` pixels down, each half the
    size and `persistence` times the weight of the previous one; about
    [-1, 1]. Computed on a grid a quarter of the finest cell and
    interpolated, since it is smooth at that scale."""
    f = int(max(1.0, cell / 2.0 ** (octaves - 1) / 4.0))
    h, w = H // f + 2, W // f + 2
    out = np.zeros((h, w), np.float32)
    amp, total, c = 1.0, 0.0, cell / f
    for _ in range(octaves):
        out += np.float32(amp) * value_noise(rng, h, w, c)
        total += amp
        amp *= persistence
        c = max(c / 2.0, 2.0)
    out /= np.float32(total)
    if f == 1:
        return out[:H, :W]
    return _interp(out, H, W, f, -0.5 / f, -0.5 / f, smooth=False)


def _smoothstep(e0, e1, x):
    t = np.clip((x - e0) / (e1 - e0), 0, 1)
    return t * t * (3 - 2 * t)


def _rasterize(plan):
    """Class map (H, W) uint8 and feature index (H, W) int32 (0 = the
    forest background, i = plan.features[i - 1])."""
    ds = gdal.GetDriverByName("MEM").Create("", plan.W, plan.H, 1, gdal.GDT_Int32)
    ds.SetGeoTransform((0.0, 1.0, 0.0, 0.0, 0.0, 1.0))
    ds.GetRasterBand(1).Fill(FOREST)
    pixels = osr.SpatialReference()
    pixels.SetLocalCS("pixels")  # the same on both sides: no reprojection
    ds.SetSpatialRef(pixels)
    vds = ogr.GetDriverByName("Memory").CreateDataSource("plan")
    lyr = vds.CreateLayer("plan", pixels, ogr.wkbUnknown)
    lyr.CreateField(ogr.FieldDefn("v", ogr.OFTInteger))
    defn = lyr.GetLayerDefn()
    for i, (cls, wkt, width, _colour, _stripe) in enumerate(plan.features, start=1):
        geom = ogr.CreateGeometryFromWkt(wkt)
        if width > 0:
            geom = geom.Buffer(width / 2.0, 3)
        feat = ogr.Feature(defn)
        feat.SetField(0, i * 32 + cls)
        feat.SetGeometryDirectly(geom)
        lyr.CreateFeature(feat)
    gdal.RasterizeLayer(ds, [1], lyr, options=["ATTRIBUTE=v"])
    v = ds.GetRasterBand(1).ReadAsArray()
    ds = None
    vds = None
    return (v & 31).astype(np.uint8), (v >> 5).astype(np.int32)


class Render:
    """Result of render(): refl (4, H, W) float32 surface reflectance (red,
    green, blue, NIR) after clouds, haze and smoke; cls (H, W) uint8 class
    map; cloud (H, W) float32 opacity; haze (H, W) float32 strength."""

    def __init__(self, refl, cls, cloud, haze):
        self.refl, self.cls, self.cloud, self.haze = refl, cls, cloud, haze


def render(plan, rng):
    H, W = plan.H, plan.W
    cls, fid = _rasterize(plan)
    colours = [MATERIAL["forest"][0]] + [f[3] for f in plan.features]
    stripes = [None] + [f[4] for f in plan.features]

    # Blooming: bright specks on forest crowns.
    for (cx, cy, r, density, colour) in plan.blooms:
        n = int(np.pi * r * r * density)
        d, a = r * np.sqrt(rng.random(n)), rng.uniform(0, 2 * np.pi, n)
        xs = np.round(cx + d * np.cos(a)).astype(np.int64)
        ys = np.round(cy + d * np.sin(a)).astype(np.int64)
        colours.append(colour)
        k = len(colours) - 1
        for dy, dx in ((0, 0), (0, 1), (1, 0), (0, -1), (-1, 0)):
            yy, xx = ys + dy, xs + dx
            ok = (yy >= 0) & (yy < H) & (xx >= 0) & (xx < W)
            yy, xx = yy[ok], xx[ok]
            fo = cls[yy, xx] == FOREST
            cls[yy[fo], xx[fo]] = BLOOM
            fid[yy[fo], xx[fo]] = k

    # Texture factor per pixel.
    sigma = 1.1
    crown = ndimage.gaussian_filter(rng.standard_normal((H, W), dtype=np.float32), sigma, mode="reflect")
    crown *= np.float32(2 * math.sqrt(math.pi) * sigma)
    shade = crown.copy()
    shade[1:, 1:] -= np.float32(0.6) * crown[:-1, :-1]
    del crown
    np.clip(shade, -2.5, 2.5, out=shade)
    factor = CROWN_AMP[cls] * shade
    del shade
    factor += LOW_AMP[cls] * fbm(rng, H, W, 128.0, 4, 0.55)
    factor += GRAIN_AMP[cls] * rng.standard_normal((H, W), dtype=np.float32)
    factor += 1.0
    stripe_tab = np.zeros((len(colours), 2), np.float32)
    for i, st in enumerate(stripes):
        if st is not None:
            stripe_tab[i] = st
    sel = np.nonzero(stripe_tab[fid, 0] > 0)
    if sel[0].size:
        per, ang = stripe_tab[fid[sel], 0], stripe_tab[fid[sel], 1]
        phase = (sel[1] * np.cos(ang) + sel[0] * np.sin(ang)) / per
        factor[sel] *= (1.0 + 0.08 * np.sin(2 * np.pi * phase)).astype(np.float32)
    np.clip(factor, 0.15, 3.0, out=factor)

    col = np.asarray(colours, np.float32)          # (n_features + 1, 4)
    refl = np.empty((4, H, W), np.float32)
    for b in range(4):
        refl[b] = col[:, b][fid] * factor
    del factor, fid

    # Clouds and their shadows.
    cloud = np.zeros((H, W), np.float32)
    if plan.cloud is not None:
        if plan.cloud[0] == "cover":
            frac, cell = plan.cloud[1], plan.cloud[2]
            n = fbm(rng, H, W, cell, 5, 0.55)
            t = np.quantile(n, 1.0 - frac) if frac < 1.0 else n.min() - 1.0
            cloud = _smoothstep(t - 0.1, t + 0.1, n).astype(np.float32)
        else:
            _, cx, cy, R = plan.cloud
            n = fbm(rng, H, W, 256.0, 6, 0.55)
            yy, xx = np.ogrid[0:H, 0:W]
            d = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2, dtype=np.float32) / np.float32(R)
            bias = np.float32(0.9) - np.float32(1.4) * d
            cloud = _smoothstep(-0.1, 0.1, n * np.float32(0.8) + bias).astype(np.float32)
        sx, sy = int(round(plan.shadow[0])), int(round(plan.shadow[1]))
        shadow = np.zeros_like(cloud)
        ys0, ys1 = max(sy, 0), H + min(sy, 0)
        xs0, xs1 = max(sx, 0), W + min(sx, 0)
        if ys1 > ys0 and xs1 > xs0:
            shadow[ys0:ys1, xs0:xs1] = cloud[ys0 - sy:ys1 - sy, xs0 - sx:xs1 - sx]
        refl *= (1.0 - 0.55 * shadow)[None]
        del shadow

    # Smoke plumes from burns.
    for (x, y, ang, length, width, strength) in plan.smoke:
        ext = length + width * 3
        x0, x1 = max(int(x - ext), 0), min(int(x + ext) + 1, W)
        y0, y1 = max(int(y - ext), 0), min(int(y + ext) + 1, H)
        if x1 <= x0 or y1 <= y0:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        u = (xx - x) * math.cos(ang) + (yy - y) * math.sin(ang)
        v = -(xx - x) * math.sin(ang) + (yy - y) * math.cos(ang)
        spread = width * (0.4 + u.clip(0) / length)
        a = strength * np.exp(-(v / spread) ** 2) * np.clip(1 - u / length, 0, 1) * (u > -width / 2)
        a *= (0.65 + 0.35 * value_noise(rng, y1 - y0, x1 - x0, 24.0))
        a = np.clip(a, 0, 0.85).astype(np.float32)
        refl[:, y0:y1, x0:x1] = refl[:, y0:y1, x0:x1] * (1 - a) + SMOKE_COLOUR[:, None, None] * a

    if plan.cloud is not None:
        bright = np.float32(0.85) + np.float32(0.3) * fbm(rng, H, W, 48.0, 4)
        for b in range(4):
            refl[b] = refl[b] * (1 - cloud) + CLOUD_COLOUR[b] * bright * cloud

    # Haze: a whitish veil that lowers contrast.
    haze = np.full((H, W), np.float32(plan.haze_floor), np.float32)
    if plan.haze is not None:
        var = np.float32(0.08) * fbm(rng, H, W, 96.0, 3)
        if plan.haze[0] == "uniform":
            haze = np.clip(np.float32(plan.haze[1]) + var, 0, 0.9).astype(np.float32)
        else:
            _, cx, cy, R, h = plan.haze
            yy, xx = np.ogrid[0:H, 0:W]
            d = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2, dtype=np.float32)
            haze = (np.float32(h) * (1 - _smoothstep(0.55 * R, R, d)) + np.float32(plan.haze_floor) + var)
            haze = np.clip(haze, 0, 0.9).astype(np.float32)
    for b in range(4):
        refl[b] = refl[b] * (1 - haze) + HAZE_COLOUR[b] * haze
    for b in range(4):
        refl[b] += np.float32(0.002) * rng.standard_normal((H, W), dtype=np.float32)
    np.clip(refl, 0.0, 1.0, out=refl)
    return Render(refl, cls, cloud, haze)


def chip_tags(r, y0, x0, size=CHIP):
    """Kaggle labels of the size x size window at (y0, x0) of a Render, by
    the rules above (LABEL_RULES, CLOUDY_MIN, PARTLY_MIN, HAZE_MIN).
    Sorted list."""
    c = r.cls[y0:y0 + size, x0:x0 + size]
    covered = r.cloud[y0:y0 + size, x0:x0 + size] > CLOUD_OPAQUE
    n = float(c.size)
    cf = covered.sum() / n
    if cf >= CLOUDY_MIN:
        return ["cloudy"]
    visible = ~covered
    counts = np.bincount(c[visible], minlength=N_CLASSES) / n
    if cf >= PARTLY_MIN:
        tags = ["partly_cloudy"]
    elif float(r.haze[y0:y0 + size, x0:x0 + size][visible].mean()) >= HAZE_MIN:
        tags = ["haze"]
    else:
        tags = ["clear"]
    for label, classes, minfrac in LABEL_RULES:
        if counts[list(classes)].sum() >= minfrac:
            tags.append(label)
    return sorted(tags)


def to_byte(refl, bands):
    """(bands, H, W) uint8 visual product of reflectance refl (4, H, W)."""
    out = np.empty((bands,) + refl.shape[1:], np.uint8)
    for b in range(bands):
        v = ((refl[b] + PATH[b]) / WHITE[b]) ** np.float32(1.0 / GAMMA)
        out[b] = np.clip(np.rint(v * 255.0), 0, 255).astype(np.uint8)
    return out


def to_uint16(refl, bands):
    """(bands, H, W) uint16 surface reflectance x 10000."""
    return np.clip(np.rint(refl[:bands] * 10000.0), 0, 65535).astype(np.uint16)
