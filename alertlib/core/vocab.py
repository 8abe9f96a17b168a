"""The study's vocabulary: the names and sizes every layer shares, each defined once.

Stamps and channels, data splits, alert classes, architecture and initialisation families, and the
order in which tables and figures list them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

# --- alert stamps --------------------------------------------------------------------------------
STAMP_SIZE = 63  # pixels on a side of a ZTF cutout (BTS release layout: (N, 63, 63, 3))
CHANNELS = ("science", "reference", "difference")  # channel order of a triplet
PIXEL_SCALE = 1.01  # arcsec per ZTF pixel
SPLITS = ("train", "val", "test")

# --- labels ----------------------------------------------------------------------------------------
PEAK_MAG_THRESHOLD = 18.5  # BTS: a "true" peaks at this magnitude or brighter
ALERT_CLASSES = ("sn", "nuclear", "agn", "varstar", "asteroid", "bogus")  # classes of the simulated sky

# --- architectures ---------------------------------------------------------------------------------
REFERENCE_ARCH = "btsbot_cnn"  # the custom CNN of BTSbot, the study's baseline
CLASSIC_ARCHS = ("btsbot_cnn", "braai_vgg")  # the custom CNNs; every other architecture is "standard" (timm)
# Consistent orders for tables and figures; names not listed come after, sorted.
ARCH_ORDER = (
    "btsbot_cnn",
    "braai_vgg",
    "resnet18",
    "resnet50",
    "convnext_pico",
    "convnext_nano",
    "efficientnet_b0",
    "mobilenetv3_large_100",
    "maxvit_tiny_rw_224",
)

# --- image + metadata (multimodal) models --------------------------------------------------------------
# BTSbot's 25 candidate features, in the order its deployed model reads them (the btsbot package's
# inference_example.py); the light-curve ones (age ... maxmag_so_far) come from the alert's history.
METADATA_FEATURES = (
    "sgscore1",
    "distpsnr1",
    "sgscore2",
    "distpsnr2",
    "fwhm",
    "magpsf",
    "sigmapsf",
    "chipsf",
    "ra",
    "dec",
    "diffmaglim",
    "ndethist",
    "nmtchps",
    "age",
    "days_since_peak",
    "days_to_peak",
    "peakmag_so_far",
    "new_drb",
    "ncovhist",
    "nnotdet",
    "chinr",
    "sharpnr",
    "scorr",
    "sky",
    "maxmag_so_far",
)
# An architecture name with one of these suffixes reads the triplet and METADATA_FEATURES
# ("resnet18+meta"): "+meta" trains the whole model, "+meta-frozen" keeps the (pre-trained) image
# encoder fixed and trains the metadata branch and the fused head (the paper's frozen-encoder variant).
MULTIMODAL_SUFFIXES = ("+meta", "+meta-frozen")


def base_arch(arch: str) -> str:
    """The image architecture of a model name: ``resnet18+meta`` -> ``resnet18``."""
    return str(arch).partition("+")[0]


def multimodal_mode(arch: str) -> str | None:
    """``"meta"`` or ``"meta-frozen"`` for an image + metadata model name, None for an image-only one.

    Raises ValueError for an unknown suffix, so that a typo never silently trains an image-only model.
    """
    base, plus, suffix = str(arch).partition("+")
    if not plus:
        return None
    if f"+{suffix}" not in MULTIMODAL_SUFFIXES:
        raise ValueError(f"unknown model suffix '+{suffix}' in {arch!r}; use one of {MULTIMODAL_SUFFIXES}")
    return suffix


# --- initialisations -------------------------------------------------------------------------------
HUB_INITS = ("imagenet", "galaxyzoo")  # published weights (timm / Zoobot), from a file, the cache or the hub
GENERIC_INITS = ("synthetic", "imagenet")  # generic (non-astronomical) pre-training
GALAXY_INIT_PREFIX = "galaxy"  # galaxy_sim, galaxy_gz1 (ours) and galaxyzoo (Zoobot's public weights)
INIT_ORDER = ("scratch", "synthetic", "imagenet", "galaxyzoo", "galaxy_sim", "galaxy_gz1")


def order_key(name, order: Sequence[str]) -> tuple[int, str]:
    """Sort key: position in ``order`` (a timm name's tag after '.' is ignored), unknown names last."""
    text = str(name)
    for candidate in (text, text.split(".")[0], base_arch(text)):
        if candidate in order:
            return (order.index(candidate), text)
    return (len(order), text)


def ordered_inits(inits: Iterable) -> list:
    """The distinct initialisations in the study's order (``INIT_ORDER``, then others sorted)."""
    return sorted(set(inits), key=lambda name: order_key(name, INIT_ORDER))


def ordered_archs(archs: Iterable) -> list:
    """The distinct architectures in the study's order (``ARCH_ORDER``, then others sorted)."""
    return sorted(set(archs), key=lambda name: order_key(name, ARCH_ORDER))


def is_galaxy_init(init) -> bool:
    """Whether an initialisation is galaxy pre-training (its name starts with ``galaxy``)."""
    return str(init).startswith(GALAXY_INIT_PREFIX)
