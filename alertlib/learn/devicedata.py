"""Training data held in the training device's memory: the triplets loaded once, augmented there in batches.

The loader path (:class:`alertlib.learn.datasets.TripletDataset` in a ``DataLoader``) prepares every
alert on the CPU, item by item, and copies each batch to the device. The device path
(:class:`DeviceTriplets`) copies a split to the device once, in chunks read from the memory-mapped
release, and then makes each batch there with a few whole-batch tensor operations, so that no CPU
worker sits between the data and the model:

1. **Load** (:meth:`DeviceTriplets.place`): chunks of the stored stamps, centre-cropped as the dataset
   asks, converted to float32 exactly as the dataset converts an item, then to the storage dtype
   (``float32``, ``bfloat16`` or ``float16``), channels first.
2. **Order** (:meth:`DeviceTriplets.set_epoch`): the epoch's order of alerts (the training sampler's,
   seeded by ``(seed, epoch)``) and the dataset's own augmentation draws for the epoch, each copied to
   the device once per epoch; a batch is then a slice of the order, with no copy from the host.
3. **Augment** (:func:`augment_batch`): the flips and quarter turns as one gather per batch, through
   a table of the 16 pixel permutations that :meth:`TripletDataset.image` can apply, built by
   applying its own numpy operations to an image of pixel numbers; then the dataset's normalisation.
   Resizing (MaxViT's 224 pixels) happens inside the model, on the device, in both paths.

With float32 storage a batch is bit for bit the batch the loader path makes from the same indices in
the same epoch (``tests/test_device_data.py``), so the choice of path does not change training.

Which path (:func:`choose_data_path`): ``"device"`` when the splits fit in a fraction of the device's
free memory (:data:`DEVICE_MEMORY_FRACTION`; on the CPU, where device memory is RAM, a smaller fraction
of the available memory and at most :data:`HOST_MEMORY_LIMIT_BYTES`), else ``"loader"``; a training
setting forces either.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from alertlib.core.errors import SettingError
from alertlib.learn.datasets import IMAGENET_MEAN, IMAGENET_STD, TripletDataset, release_mapped_pages

DATA_PATHS = ("auto", "device", "loader")
DEVICE_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
# The resident splits may take this fraction of the GPU's free memory; the rest is for the model's
# weights, activations and the compiler's workspace.
DEVICE_MEMORY_FRACTION = 0.5
# On the CPU the "device" is the process's RAM: the device path is chosen for small releases only
# (the study's skies), never for one the loader reads from its memory map within a bounded memory.
HOST_MEMORY_FRACTION = 0.25
HOST_MEMORY_LIMIT_BYTES = 2 * 2**30
LOAD_CHUNK_BYTES = 64 * 2**20


@dataclass(frozen=True)
class DataPathChoice:
    """Which data path :func:`choose_data_path` took, in which storage dtype, and why."""

    path: str
    dtype: str | None
    reason: str


def stored_bytes(dataset: TripletDataset, dtype: str) -> int:
    """Bytes the dataset's (cropped) triplets take on the device in ``dtype``."""
    height, width = _cropped_shape(dataset)
    return len(dataset) * dataset.triplets.shape[-1] * height * width * DEVICE_DTYPES[dtype].itemsize


def device_memory_budget(device: torch.device) -> int:
    """Bytes the resident splits may take on ``device`` (see the module docstring)."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(DEVICE_MEMORY_FRACTION * free)
    import psutil

    return int(min(HOST_MEMORY_FRACTION * psutil.virtual_memory().available, HOST_MEMORY_LIMIT_BYTES))


def choose_data_path(
    setting: str, datasets: list, device: torch.device, dtype_setting: str = "auto", budget: int | None = None
) -> DataPathChoice:
    """The data path for training on ``device`` (``"device"`` or ``"loader"``) and the storage dtype.

    Parameters
    ----------
    setting:
        ``"auto"`` (the device path when every dataset is a :class:`TripletDataset` and they fit),
        ``"device"`` (always; an error when a dataset is of another kind) or ``"loader"``.
    datasets:
        The training and validation datasets.
    device:
        The training device.
    dtype_setting:
        ``"auto"`` (float32 when it fits, else bfloat16) or a key of :data:`DEVICE_DTYPES`.
    budget:
        Bytes the splits may take; default :func:`device_memory_budget`.
    """
    if setting not in DATA_PATHS:
        raise SettingError(f"data_path must be one of {DATA_PATHS}, not {setting!r}")
    if dtype_setting != "auto" and dtype_setting not in DEVICE_DTYPES:
        raise SettingError(f"device_data_dtype must be 'auto' or one of {sorted(DEVICE_DTYPES)}, not {dtype_setting!r}")
    if setting == "loader":
        return DataPathChoice("loader", None, "data_path is 'loader'")
    others = [type(d).__name__ for d in datasets if not isinstance(d, TripletDataset)]
    if others:
        if setting == "device":
            raise SettingError(f"data_path 'device' needs TripletDataset splits, got {others}; use 'auto' or 'loader'")
        return DataPathChoice("loader", None, f"{others[0]} has no device path")
    candidates = ["float32", "bfloat16"] if dtype_setting == "auto" else [dtype_setting]
    needed = {dtype: sum(stored_bytes(d, dtype) for d in datasets) for dtype in candidates}
    if setting == "device":
        dtype = candidates[0] if dtype_setting != "auto" or device.type == "cpu" else _fitting(needed, budget, device)
        return DataPathChoice("device", dtype or candidates[-1], "data_path is 'device'")
    budget = device_memory_budget(device) if budget is None else budget
    dtype = _fitting(needed, budget, device)
    if device.type == "cpu" and dtype is not None and dtype != "float32":
        dtype = None  # on the CPU a narrower dtype gains nothing: the model computes in float32
    if dtype is None:
        smallest = min(needed.values())
        return DataPathChoice("loader", None, f"the splits need {smallest / 2**30:.2f} GiB, over {budget / 2**30:.2f}")
    return DataPathChoice("device", dtype, f"the splits take {needed[dtype] / 2**30:.2f} of {budget / 2**30:.2f} GiB")


def _fitting(needed: dict[str, int], budget: int | None, device: torch.device) -> str | None:
    budget = device_memory_budget(device) if budget is None else budget
    return next((dtype for dtype, size in needed.items() if size <= budget), None)


def _cropped_shape(dataset: TripletDataset) -> tuple[int, int]:
    rows, columns = dataset.crop_window
    height, width = dataset.triplets.shape[1:3]
    return len(range(height)[rows]), len(range(width)[columns])


def augmentation_permutations(height: int, width: int) -> torch.Tensor:
    """(16, H * W) pixel permutations, one per draw ``8 * flip_lr + 4 * flip_ud + quarter_turns``.

    Row ``code`` lists, for each output pixel, the input pixel that :meth:`TripletDataset.image` puts
    there for that draw: the table is made by its own numpy operations on an image of pixel numbers.
    """
    if height != width:
        raise ValueError(f"flips and quarter turns need square stamps, not {height}x{width}")
    pixels = np.arange(height * width).reshape(height, width, 1)
    rows = []
    for code in range(16):
        image = pixels
        if code & 8:
            image = image[:, ::-1]
        if code & 4:
            image = image[::-1]
        if code & 3:
            image = np.rot90(image, code & 3, axes=(0, 1))
        rows.append(np.ascontiguousarray(image).reshape(-1))
    return torch.from_numpy(np.stack(rows))


def augmentation_codes(dataset: TripletDataset) -> np.ndarray:
    """The dataset's draws of its current epoch as one code per alert (0 without augmentation)."""
    if not dataset.augment:
        return np.zeros(len(dataset), dtype=np.int64)
    return 8 * dataset.flip_lr.astype(np.int64) + 4 * dataset.flip_ud.astype(np.int64) + dataset.quarter_turns


def augment_batch(images: torch.Tensor, codes: torch.Tensor, permutations: torch.Tensor) -> torch.Tensor:
    """Flip and turn each image of ``images`` (B, C, H, W) as its code says, in one gather."""
    batch, channels, height, width = images.shape
    index = permutations.index_select(0, codes).unsqueeze(1).expand(batch, channels, height * width)
    return torch.gather(images.reshape(batch, channels, height * width), 2, index).view(batch, channels, height, width)


def normalise_batch(images: torch.Tensor, normalisation: str) -> torch.Tensor:
    """:func:`alertlib.learn.datasets.normalise_image` on a batch (B, C, H, W) of float32 images."""
    if normalisation == "l2":
        return images
    low = images.amin(dim=(2, 3), keepdim=True)
    span = images.amax(dim=(2, 3), keepdim=True) - low
    unit = torch.where(span > 0, (images - low) / torch.where(span > 0, span, 1.0), 0.0)
    if normalisation == "unit":
        return unit
    if images.shape[1] != 3:
        raise ValueError(f"ImageNet normalisation needs 3 channels, got {images.shape[1]}")
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32, device=images.device).view(1, 3, 1, 1)
    return (unit - mean) / std


@contextmanager
def single_cpu_thread(device: torch.device):
    """On the CPU, run the enclosed tensor operations in one thread.

    A batch's gathers are too small for several threads: starting a parallel region costs more than
    it saves, and on a busy machine far more (waiting for a descheduled thread).
    """
    if device.type != "cpu":
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class DeviceTriplets(Dataset):
    """A :class:`TripletDataset` held on the training device, whose items are whole batches.

    Item ``b`` is batch ``b`` of the epoch's order, ``(images (B, C, H, W) float32, labels (B,))``
    (``((images, features (B, F)), labels)`` for a dataset with candidate features), on the device. The order is set with :meth:`set_epoch` (by
    :class:`alertlib.learn.training.EpochBatchSampler`); :meth:`place` loads the triplets.

    Parameters
    ----------
    source:
        The dataset: its triplets (in memory or memory-mapped), labels, crop, normalisation, seed and
        augmentation draws are those of the batches.
    batch_size:
        Alerts per batch (the last batch of an epoch may be smaller).
    dtype:
        Storage dtype on the device, a key of :data:`DEVICE_DTYPES`; batches are float32.
    """

    def __init__(self, source: TripletDataset, batch_size: int, dtype: str = "float32"):
        if dtype not in DEVICE_DTYPES:
            raise SettingError(f"device data dtype must be one of {sorted(DEVICE_DTYPES)}, not {dtype!r}")
        self.source = source
        self.batch_size = int(batch_size)
        self.dtype = dtype
        self.height, self.width = _cropped_shape(source)
        self.order_length = len(source)
        self._drop_device_state()

    def _drop_device_state(self) -> None:
        self.device: torch.device | None = None
        self.epoch: int | None = None
        self.images: torch.Tensor | None = None
        self.features: torch.Tensor | None = None
        self.labels: torch.Tensor | None = None
        self.permutations: torch.Tensor | None = None
        self.order: torch.Tensor | None = None
        self.codes: torch.Tensor | None = None

    def __getstate__(self) -> dict:
        # Each training process places its own copy on its own device (see place).
        state = self.__dict__.copy()
        state.update(
            device=None, epoch=None, images=None, features=None, labels=None, permutations=None, order=None, codes=None
        )
        return state

    def place(self, device: torch.device | str) -> None:
        """Copy the triplets and labels to ``device`` (once; chunks of :data:`LOAD_CHUNK_BYTES`)."""
        device = torch.device(device)
        if self.images is not None and self.device == device:
            return
        source = self.source
        triplets, (rows, columns) = source.triplets, source.crop_window
        channels = triplets.shape[-1]
        shape = (len(source), channels, self.height, self.width)
        images = torch.empty(shape, dtype=DEVICE_DTYPES[self.dtype], device=device)
        chunk = max(1, LOAD_CHUNK_BYTES // max(1, triplets[:1].nbytes))
        for start in range(0, len(source), chunk):
            # A copy (np.array): a float32 memory map would otherwise lend torch its read-only pages.
            block = np.array(triplets[start : start + chunk][:, rows, columns], dtype=np.float32, order="C")
            images[start : start + chunk].copy_(torch.from_numpy(block).to(device).permute(0, 3, 1, 2))
            release_mapped_pages(triplets)
        self.device, self.images = device, images
        self.features = None if source.features is None else source.features.to(device)
        self.labels = torch.from_numpy(np.asarray(source.labels, dtype=np.float32)).to(device)
        self.permutations = augmentation_permutations(self.height, self.width).to(device)
        self.epoch = None

    def set_epoch(self, epoch: int, order: np.ndarray) -> None:
        """Take the epoch's order of alerts (this process's share) and the dataset's draws for the epoch."""
        if self.images is None:
            raise RuntimeError("DeviceTriplets.place(device) must run before the first epoch")
        self.source.set_epoch(int(epoch))
        self.codes = torch.from_numpy(augmentation_codes(self.source)).to(self.device)
        self.order = torch.from_numpy(np.asarray(order, dtype=np.int64)).to(self.device)
        self.order_length = len(order)
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return -(-self.order_length // self.batch_size)

    def __getitem__(self, batch: int):
        if self.order is None:
            raise RuntimeError("DeviceTriplets.set_epoch(epoch, order) must run before reading batches")
        with single_cpu_thread(self.device):
            indices = self.order[batch * self.batch_size : (batch + 1) * self.batch_size]
            images = self.images.index_select(0, indices).float()
            if self.source.augment:
                images = augment_batch(images, self.codes.index_select(0, indices), self.permutations)
            images = normalise_batch(images, self.source.normalisation)
            inputs = images if self.features is None else (images, self.features.index_select(0, indices))
            return inputs, self.labels.index_select(0, indices)
