"""canopy_labels -- the label set and input statistics canopy's Python tools
share (one home: canopy_models, demo_scenes and the tests import it). No
dependencies beyond the standard library.

KAGGLE_LABELS
    The 17 labels of the Kaggle "Planet: Understanding the Amazon from Space"
    competition, alphabetical, in Kaggle's spelling (artisinal_mine).
DEFAULT_MARKERS
    The default deforestation-marker labels (DESIGN.md).
IMAGENET_MEAN, IMAGENET_STD
    Per-channel RGB statistics of ImageNet (what fastai and torchvision
    normalise with).
NIR_MEAN, NIR_STD
    The default statistics of a 4th (near-infrared) channel: the mean of the
    ImageNet RGB values.

The C engine keeps its own copy of these defaults (classifier/onnx/meta.c);
tests/model/test_meta.py checks that the two agree.
"""

KAGGLE_LABELS = [
    "agriculture", "artisinal_mine", "bare_ground", "blooming", "blow_down", "clear", "cloudy",
    "conventional_mine", "cultivation", "habitation", "haze", "partly_cloudy", "primary", "road",
    "selective_logging", "slash_burn", "water",
]

DEFAULT_MARKERS = [
    "agriculture", "artisinal_mine", "bare_ground", "blow_down", "conventional_mine",
    "cultivation", "habitation", "road", "selective_logging", "slash_burn",
]

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
NIR_MEAN = 0.449
NIR_STD = 0.226
