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

# --- initialisations -------------------------------------------------------------------------------
HUB_INITS = ("imagenet", "galaxyzoo")  # published weights (timm / Zoobot), from a file, the cache or the hub
GENERIC_INITS = ("synthetic", "imagenet")  # generic (non-astronomical) pre-training
GALAXY_INIT_PREFIX = "galaxy"  # galaxy_sim, galaxy_gz1 (ours) and galaxyzoo (Zoobot's public weights)
INIT_ORDER = ("scratch", "synthetic", "imagenet", "galaxyzoo", "galaxy_sim", "galaxy_gz1")


def order_key(name, order: Sequence[str]) -> tuple[int, str]:
    """Sort key: position in ``order`` (a timm name's tag after '.' is ignored), unknown names last."""
    text = str(name)
    for candidate in (text, text.split(".")[0]):
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
