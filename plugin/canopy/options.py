"""canopy classify's options as typed Processing parameters: their short
labels and tooltips, their checks (the text ones, and against the chosen
model's labels and channels), and the command line made from them.

The parsers are plain Python (ValueError with the message a user sees), so
that the dialog's checks, processAlgorithm and the tests share them."""
import re

from qgis.core import (QgsProcessingParameterBoolean, QgsProcessingParameterDefinition,
                       QgsProcessingParameterEnum, QgsProcessingParameterFile,
                       QgsProcessingParameterMatrix, QgsProcessingParameterNumber,
                       QgsProcessingParameterString)

from .i18n import tr

MODEL, CHIP, STRIDE, THRESHOLDS, MARKERS, TTA = (
    "MODEL", "CHIP", "STRIDE", "THRESHOLDS", "MARKERS", "TTA")
BANDS, SCALE_RANGE, GSD, NATIVE_GSD, MIN_VALID, THREADS = (
    "BANDS", "SCALE_RANGE", "GSD", "NATIVE_GSD", "MIN_VALID", "THREADS")
PRECISION, PROBS_TYPE, SPLIT_MASKS, FORMAT, CREATION_OPTIONS = (
    "PRECISION", "PROBS_TYPE", "SPLIT_MASKS", "FORMAT", "CREATION_OPTIONS")

PRECISIONS = ["fp32", "bf16", "int8"]
PROBS_TYPES = ["Byte", "Float32"]
FORMATS = ["GTiff", "COG"]
_NAME = re.compile(r"^[A-Za-z0-9_]+$")


def _param(p, help_text, advanced=False):
    p.setHelp(help_text)
    if advanced:
        p.setFlags(p.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
    return p


def _with_widget(p, name):
    """p drawn with widgets.NAME in the dialogs."""
    p.setMetadata({"widget_wrapper": {"class": "%s.widgets.%s" % (__package__, name)}})
    return p


def definitions():
    """The parameters of canopy classify, in dialog order (the scene, the
    output folder and what to open are each algorithm's own)."""
    Int, Double = QgsProcessingParameterNumber.Integer, QgsProcessingParameterNumber.Double
    creation = QgsProcessingParameterString(CREATION_OPTIONS, tr("Creation options"),
                                            optional=True)
    _with_widget(creation, "CreationOptions")
    return [
        _param(QgsProcessingParameterFile(MODEL, tr("ONNX model"), extension="onnx",
                                          optional=True),
               tr("The classifier, an ONNX file with canopy's metadata. Empty: canopy's "
                  "default model ($CANOPY_MODEL, else the demo model).")),
        _param(QgsProcessingParameterNumber(CHIP, tr("Chip size"), Int, 256, minValue=8,
                                            maxValue=65536),
               tr("Side of a chip in pixels at the model's ground sampling distance; each "
                  "chip is resized to the model's input size.")),
        _param(QgsProcessingParameterNumber(STRIDE, tr("Stride"), Int, 0, minValue=0,
                                            maxValue=65536),
               tr("Step between chips in the same pixels; 0 is the chip size (no overlap). "
                  "The output rasters have one cell per step.")),
        _param(QgsProcessingParameterMatrix(THRESHOLDS, tr("Thresholds"), numberRows=0,
                                            hasFixedNumberRows=False,
                                            headers=[tr("Label"), tr("Threshold")],
                                            optional=True),
               tr("Decision thresholds per label (a label of the model and a probability "
                  "between 0 and 1). Labels not listed keep the model's threshold.")),
        _param(_with_widget(QgsProcessingParameterString(MARKERS, tr("Marker labels"),
                                                         optional=True), "MarkerLabels"),
               tr("Labels written to the markers GeoJSON, separated by commas (e.g. "
                  "road, slash_burn), or none. Empty: the model's marker labels.")),
        _param(QgsProcessingParameterBoolean(TTA, tr("Test-time augmentation"), False),
               tr("Average each chip over its 8 rotations and flips: steadier "
                  "probabilities, 8 times slower.")),
        _param(QgsProcessingParameterString(BANDS, tr("Bands"), optional=True),
               tr("The scene's bands fed to the model, in the model's channel order, "
                  "separated by commas (e.g. 3,2,1). Empty: the model's bands."), True),
        _param(QgsProcessingParameterString(SCALE_RANGE, tr("Scale range"), optional=True),
               tr("MIN,MAX of the scene's raw values, mapped to 0..1 before the model's "
                  "normalisation (e.g. 0,3000 for Sentinel-2 L2A). Empty: the model's "
                  "scale."), True),
        _param(QgsProcessingParameterNumber(GSD, tr("Ground sampling distance"), Double,
                                            None, optional=True, minValue=0.01,
                                            maxValue=100000),
               tr("Metres per pixel to read chips at. Empty: the model's training GSD "
                  "(without one, the scene's own resolution)."), True),
        _param(QgsProcessingParameterBoolean(NATIVE_GSD, tr("Read at the scene's resolution"),
                                             False),
               tr("Read chips at the scene's own resolution whatever the model was trained "
                  "at (canopy's --gsd native); excludes a ground sampling distance."), True),
        _param(QgsProcessingParameterNumber(MIN_VALID, tr("Minimum valid share"), Double, 0.5,
                                            minValue=0.0, maxValue=1.0),
               tr("A chip with a smaller share of valid pixels (not nodata, not alpha 0, not "
                  "masked) is not classified."), True),
        _param(QgsProcessingParameterNumber(THREADS, tr("Threads"), Int, 0, minValue=0,
                                            maxValue=1024),
               tr("Inference threads; 0 uses every core."), True),
        _param(QgsProcessingParameterEnum(PRECISION, tr("Precision"), PRECISIONS,
                                          defaultValue=0),
               tr("fp32; bf16 convolutions with fp32 accumulation on CPUs with "
                  "AVX512_BF16; or int8 on CPUs with AVX512_VNNI, for a model "
                  "calibrated by canopy calibrate (elsewhere canopy says so and "
                  "uses fp32)."), True),
        _param(QgsProcessingParameterEnum(PROBS_TYPE, tr("Probabilities data type"),
                                          PROBS_TYPES, defaultValue=0),
               tr("Byte (0..254, scale 1/255, small files) or Float32."), True),
        _param(QgsProcessingParameterBoolean(SPLIT_MASKS, tr("One mask file per label"), False),
               tr("Also write NAME.masks/LABEL.tif, one single-band mask per label."), True),
        _param(QgsProcessingParameterEnum(FORMAT, tr("Raster format"), FORMATS,
                                          defaultValue=0),
               tr("GeoTIFF, or Cloud Optimized GeoTIFF."), True),
        _param(creation,
               tr("GDAL creation options for the rasters, NAME=VALUE separated by | "
                  "(e.g. COMPRESS=DEFLATE|PREDICTOR=2)."), True),
    ]


def parse_labels(text):
    """'road, slash_burn' -> ['road', 'slash_burn']; 'none' -> []; '' -> None."""
    items = [x for x in re.split(r"[\s,;]+", (text or "").strip()) if x]
    if not items:
        return None
    if [x.lower() for x in items] == ["none"]:
        return []
    return items


def parse_bands(text):
    """'3,2,1' -> [3, 2, 1]; '' -> None."""
    items = [x for x in re.split(r"[\s,;]+", (text or "").strip()) if x]
    if not items:
        return None
    if not all(x.isdigit() and int(x) >= 1 for x in items):
        raise ValueError(tr("Bands: {0!r} is not a list of band numbers from 1, separated by "
                            "commas (e.g. 3,2,1)").format(text))
    return [int(x) for x in items]


def parse_scale_range(text):
    """'0,3000' -> (0.0, 3000.0); '' -> None."""
    items = [x for x in re.split(r"[\s,;]+", (text or "").strip()) if x]
    if not items:
        return None
    try:
        values = [float(x) for x in items]
    except ValueError:
        values = []
    if len(values) != 2 or not values[0] < values[1] or any(v != v for v in values):
        raise ValueError(tr("Scale range: {0!r} is not MIN,MAX with MIN < MAX (e.g. "
                            "0,3000)").format(text))
    return values[0], values[1]


def _null(x):
    return x is None or (hasattr(x, "isNull") and x.isNull())


def parse_thresholds(matrix):
    """The matrix's cells [label, value, label, value, ...] -> [(label, p)]."""
    if isinstance(matrix, str):   # "road,0.3,water,0.5", as Processing accepts a matrix
        matrix = matrix.split(",")
    cells = ["" if _null(x) else str(x).strip() for x in (matrix or [])]
    while cells and cells[-1] == "":
        cells.pop()   # no value (Processing's [NULL]), or empty rows from the table editor
    if len(cells) % 2:
        raise ValueError(tr("Thresholds: each row needs a label and a threshold"))
    out = []
    for label, value in zip(cells[0::2], cells[1::2]):
        try:
            p = float(value)
        except ValueError:
            p = -1.0
        if not label or not 0.0 <= p <= 1.0:
            raise ValueError(tr("Thresholds: {0} = {1!r}: give a label and a probability "
                                "between 0 and 1").format(label or tr("(no label)"), value))
        out.append((label, p))
    return out


def parse_creation_options(text):
    """'COMPRESS=DEFLATE|PREDICTOR=2' -> ['COMPRESS=DEFLATE', 'PREDICTOR=2']."""
    out = []
    for item in (x.strip() for x in re.split(r"[|\s]+", text or "")):
        if not item:
            continue
        name, eq, value = item.partition("=")
        if not eq or not _NAME.match(name) or not value:
            raise ValueError(tr("Creation options: {0!r} is not NAME=VALUE (e.g. "
                                "COMPRESS=DEFLATE)").format(item))
        out.append(item)
    return out


def _unknown(kind, names, labels):
    bad = [x for x in names if x not in labels]
    if bad:
        raise ValueError(tr("{0}: {1} not among the model's labels: {2}").format(
            kind, ", ".join(bad), ", ".join(labels)))


def check_against_model(values, meta, scene_bands=None):
    """Raises ValueError when the parsed values do not fit the model
    (labels, channels) or the scene (band numbers)."""
    labels = meta.get("labels", [])
    _unknown(tr("Thresholds"), [x for x, _ in values["thresholds"]], labels)
    _unknown(tr("Marker labels"), values["markers"] or [], labels)
    bands = values["bands"]
    channels = meta.get("n_channels") or len(meta.get("bands") or [])
    if bands is not None and channels and len(bands) != channels:
        raise ValueError(tr("Bands: the model takes {0} channels and {1} bands are given "
                            "({2})").format(channels, len(bands), ",".join(map(str, bands))))
    used = bands or meta.get("bands") or []
    if scene_bands and used and max(used) > scene_bands:
        raise ValueError(tr("Bands: the scene's bands are 1 to {0} and band {1} is asked "
                            "for; give the scene's bands for the model's channels under Bands "
                            "(e.g. 3,2,1)").format(scene_bands, max(used)))


def values(alg, parameters, context):
    """The parameters read and parsed (ValueError on a malformed one)."""
    def text(name):
        return (alg.parameterAsString(parameters, name, context) or "").strip()

    gsd = parameters.get(GSD)
    v = {
        "model": text(MODEL),
        "chip": alg.parameterAsInt(parameters, CHIP, context),
        "stride": alg.parameterAsInt(parameters, STRIDE, context),
        "thresholds": parse_thresholds(alg.parameterAsMatrix(parameters, THRESHOLDS, context)),
        "markers": parse_labels(text(MARKERS)),
        "tta": alg.parameterAsBoolean(parameters, TTA, context),
        "bands": parse_bands(text(BANDS)),
        "scale_range": parse_scale_range(text(SCALE_RANGE)),
        "gsd": (alg.parameterAsDouble(parameters, GSD, context)
                if gsd not in (None, "") else None),
        "native": alg.parameterAsBoolean(parameters, NATIVE_GSD, context),
        "min_valid": alg.parameterAsDouble(parameters, MIN_VALID, context),
        "threads": alg.parameterAsInt(parameters, THREADS, context),
        "precision": PRECISIONS[alg.parameterAsEnum(parameters, PRECISION, context)],
        "probs_type": PROBS_TYPES[alg.parameterAsEnum(parameters, PROBS_TYPE, context)],
        "split_masks": alg.parameterAsBoolean(parameters, SPLIT_MASKS, context),
        "format": FORMATS[alg.parameterAsEnum(parameters, FORMAT, context)],
        "creation_options": parse_creation_options(text(CREATION_OPTIONS)),
    }
    if v["native"] and v["gsd"] is not None:
        raise ValueError(tr("Ground sampling distance: give a distance or tick \"Read at the "
                            "scene's resolution\", not both"))
    return v


def arguments(v):
    """canopy classify's options for the parsed values (no -o, no scenes)."""
    args = ["-m", v["model"]] if v["model"] else []
    args += ["--chip", str(v["chip"])]
    if v["stride"]:
        args += ["--stride", str(v["stride"])]
    for label, p in v["thresholds"]:
        args += ["--threshold", "%s=%r" % (label, p)]
    if v["markers"] is not None:
        args += ["--markers", ",".join(v["markers"]) or "none"]
    if v["tta"]:
        args.append("--tta")
    if v["bands"]:
        args += ["--bands", ",".join(map(str, v["bands"]))]
    if v["scale_range"]:
        args += ["--scale-range", "%r,%r" % v["scale_range"]]
    if v["native"]:
        args += ["--gsd", "native"]
    elif v["gsd"] is not None:
        args += ["--gsd", repr(v["gsd"])]
    if v["min_valid"] != 0.5:
        args += ["--min-valid", repr(v["min_valid"])]
    if v["threads"]:
        args += ["--threads", str(v["threads"])]
    if v["precision"] != "fp32":
        args += ["--precision", v["precision"]]
    if v["probs_type"] != "Byte":
        args += ["--probs-type", v["probs_type"]]
    if v["split_masks"]:
        args.append("--split-masks")
    if v["format"] != "GTiff":
        args += ["-of", v["format"]]
    for co in v["creation_options"]:
        args += ["-co", co]
    return args
