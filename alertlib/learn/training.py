"""Training with PyTorch Lightning: one LightningModule for every regimen, and a ``fit`` that sets it up.

One concern: training a model with the study's recipe (its module, callbacks, samplers and loaders).

Regimens (``objective``):

``binary``
    Alert fine-tuning, BTS task: BCE-with-logits, ``pos_weight = negatives / positives`` of the
    training split.
``multiclass``
    Alert fine-tuning, multi-class task (and synthetic-corpus or GZ1 hard-label pre-training):
    cross-entropy with class weights ``n / (K * n_class)`` from the training split (``class_weights``).
``votes``
    Galaxy pre-training on volunteer vote counts: the Dirichlet-multinomial loss over the decision
    tree (:class:`alertlib.learn.losses.DirichletMultinomialLoss`).

Recipe (the authors', STUDY_NOTES.md): AdamW (betas 0.9, 0.999, weight decay 0.01), a linear warm-up
over 2 epochs from 0.01x the learning rate, then cosine decay to 0.01x at the last epoch (stepped per
batch); batch 64; early stopping on the validation loss with patience 5, counting only relative
improvements of at least 0.5%; the weights of the epoch with the lowest validation loss are kept.

Learning rate per initialisation (:data:`LEARNING_RATES`, overridden by the config key ``lr``):
the authors fine-tuned pre-trained ConvNeXt/MaxViT at 5e-6 for up to 25 epochs over ~400k alerts.
Our runs see far fewer alerts and epochs, so pre-trained weights get 1e-4 (still 10x below scratch:
a large rate erases what pre-training learned), our own pre-trained checkpoints 3e-4 (small data,
short pre-training), and scratch models 1e-3.

Precision: bf16 autocast on a GPU, float32 on the CPU. Determinism: a seed fixes the data order
(:class:`EpochSampler`), augmentations (the datasets' ``set_epoch``) and initialisation; on the CPU
Lightning runs with ``deterministic=True``, so a seed gives the same metrics.

Data paths (``data_path``): ``"loader"`` feeds the model from a ``DataLoader`` over the dataset (CPU
workers, item by item); ``"device"`` holds alert triplets in the training device's memory and makes
each batch there (:mod:`alertlib.learn.devicedata`), bit for bit the loader's batch when stored in
float32; ``"auto"`` (the default) takes the device path when the splits fit
(:func:`alertlib.learn.devicedata.choose_data_path`): on the CPU for the study's small skies.

Several devices (``devices``, ``strategy``, e.g. ``2`` and ``"ddp"``): Lightning's data-parallel
training, one process per device, with the same effective batch: each process takes
``batch_size / world_size`` alerts of the same seeded order (:class:`EpochSampler` shards it by rank),
gradients are averaged over the processes, batch-norm statistics are synchronised, and the epoch's
losses are summed over all processes before they are recorded, so early stopping sees the losses of
one process over the whole data. ``"ddp"`` suits a script or ``torchrun`` (large data: each process
reads the memory map itself); in a notebook Lightning starts the processes by fork
(``"ddp_notebook"``) and :func:`fit` brings the history back from them.

Lightning is kept quiet (no logger, no model summary, no per-batch bars): one tqdm bar over epochs,
with the losses as its postfix.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from alertlib.core import progress
from alertlib.core.errors import DataError, SettingError
from alertlib.learn.devicedata import DataPathChoice, DeviceTriplets, choose_data_path

# Lightning 2.6 warns about a torch deprecation inside its own code at import; not ours to fix.
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
import lightning.pytorch as pl  # noqa: E402 - after the warning filter

LEARNING_RATES = {
    "scratch": 1e-3,
    "imagenet": 1e-4,
    "galaxyzoo": 1e-4,
    "checkpoint": 3e-4,  # any of our own pre-trainings: synthetic, galaxy_sim, galaxy_gz1 ...
}
OBJECTIVES = ("binary", "multiclass", "votes")

TRAINING_DEFAULTS = {
    "epochs": 25,
    "batch_size": 64,
    "lr": None,  # None: LEARNING_RATES by init
    "weight_decay": 0.01,
    "warmup_epochs": 2,
    "lr_floor": 0.01,  # warm-up starts and cosine ends at this fraction of lr
    "patience": 5,
    "min_rel_improvement": 0.005,
    "num_workers": 0,
    "channels_last": False,
    "compile": False,
    "progress": True,
    "accelerator": "auto",
    "devices": "auto",
    "strategy": "auto",  # Lightning's; with several devices "ddp" (see the module docstring)
    "data_path": "auto",  # "auto", "device" or "loader" (see the module docstring)
    "device_data_dtype": "auto",  # storage of the device path: float32 when it fits, else bfloat16
}


def learning_rate_for(init: str) -> float:
    """The default learning rate for an initialisation (see the module docstring)."""
    return LEARNING_RATES.get(init, LEARNING_RATES["checkpoint"])


def training_settings(config: dict) -> dict:
    """:data:`TRAINING_DEFAULTS` updated with the matching keys of ``config``."""
    return {key: config.get(key, default) for key, default in TRAINING_DEFAULTS.items()}


def quiet_lightning() -> None:
    """Silence Lightning's informational logs and its warnings about things chosen on purpose."""
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for pattern in (
        ".*does not have many workers.*",  # num_workers=0 is chosen: the CPUs are shared
        ".*GPU available but not used.*",
        ".*LitLogger.*",
        ".*litlogger.*",
        ".*The number of training batches.*log_every_n_steps.*",
        ".*tensorboardX.*",
    ):
        warnings.filterwarnings("ignore", message=pattern)


def warmup_cosine_schedule(optimizer, warmup_steps: int, total_steps: int, floor: float = 0.01):
    """The authors' schedule with PyTorch's schedulers: linear from ``floor`` to 1 over ``warmup_steps``
    (``LinearLR``), then cosine to ``floor`` at ``total_steps`` (``CosineAnnealingLR``), stepped per batch."""
    base_rates = [group["lr"] for group in optimizer.param_groups]
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=max(1, total_steps - warmup_steps), eta_min=floor * min(base_rates)
    )
    if warmup_steps <= 0:
        return cosine
    warmup = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=floor, end_factor=1.0, total_iters=warmup_steps)
    return torch.optim.lr_scheduler.SequentialLR(optimizer, [warmup, cosine], milestones=[warmup_steps])


class EpochSampler(Sampler):
    """A seeded shuffle per epoch that also tells the dataset the epoch (for its augmentations).

    Lightning calls ``set_epoch`` on the sampler before each epoch, so data order and augmentations
    depend only on ``(seed, epoch)``.

    With ``num_replicas`` training processes each takes every ``num_replicas``-th alert of the same
    order, from its rank on (``DistributedSampler``'s sharding): batches of ``batch_size /
    num_replicas`` per process then hold, over all processes, the alerts of one batch of a single
    process. ``pad`` (training) repeats the first alerts of the order so that every process gets as
    many and they step together; without it (validation) every alert is seen once.
    """

    def __init__(self, dataset: Dataset, seed: int, shuffle: bool = True, num_replicas: int = 1, pad: bool = True):
        self.dataset = dataset
        self.seed = int(seed)
        self.shuffle = shuffle
        self.num_replicas = int(num_replicas)
        self.pad = pad
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(self.epoch)

    def alert_count(self) -> int:
        return len(self.dataset)

    def rank(self) -> int:
        """This process's rank among ``num_replicas`` (0 for one process)."""
        if self.num_replicas == 1:
            return 0
        if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
            raise RuntimeError(f"a sampler for {self.num_replicas} processes needs torch.distributed set up")
        return torch.distributed.get_rank()

    def order(self) -> np.ndarray:
        """This process's alerts of the epoch, in order."""
        n = self.alert_count()
        order = np.random.default_rng([self.seed, self.epoch, 17]).permutation(n) if self.shuffle else np.arange(n)
        if self.num_replicas == 1:
            return order
        if self.pad:
            order = np.resize(order, -(-n // self.num_replicas) * self.num_replicas)  # repeats from the start
        return order[self.rank() :: self.num_replicas]

    def __len__(self) -> int:
        n = self.alert_count()
        if self.num_replicas == 1:
            return n
        return -(-n // self.num_replicas) if self.pad else len(range(self.rank(), n, self.num_replicas))

    def __iter__(self):
        return iter(self.order().tolist())


class EpochBatchSampler(EpochSampler):
    """:class:`EpochSampler`'s order for a :class:`alertlib.learn.devicedata.DeviceTriplets`, whose items are
    batches: the order goes to the dataset (on its device) once per epoch, and the sampler yields batch numbers."""

    def alert_count(self) -> int:
        return len(self.dataset.source)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        self.dataset.set_epoch(self.epoch, self.order())

    def __len__(self) -> int:
        return -(-super().__len__() // self.dataset.batch_size)

    def __iter__(self):
        if self.dataset.epoch != self.epoch:
            self.dataset.set_epoch(self.epoch, self.order())
        return iter(range(len(self.dataset)))


def make_loss(objective: str, pos_weight: float | None = None, class_weights=None, schema: str = "gz_decals_dr5"):
    """The loss module of an objective (see the module docstring)."""
    if objective == "binary":
        weight = None if pos_weight is None else torch.tensor([float(pos_weight)])
        return nn.BCEWithLogitsLoss(pos_weight=weight)
    if objective == "multiclass":
        weight = None if class_weights is None else torch.as_tensor(np.asarray(class_weights), dtype=torch.float32)
        return nn.CrossEntropyLoss(weight=weight)
    if objective == "votes":
        from alertlib.learn.losses import DirichletMultinomialLoss

        return DirichletMultinomialLoss(schema)
    raise ValueError(f"objective must be one of {OBJECTIVES}, not {objective!r}")


def binary_pos_weight(labels) -> float:
    """``negatives / positives`` of a 0/1 label array (an error when a class is missing)."""
    labels = np.asarray(labels)
    positives, negatives = int(np.sum(labels == 1)), int(np.sum(labels == 0))
    if positives == 0 or negatives == 0:
        raise DataError(
            f"the training split needs both classes; it has {positives} positives, {negatives} negatives "
            "(use more sources or a larger train_fraction)"
        )
    return negatives / positives


def balanced_class_weights(labels, n_classes: int) -> np.ndarray:
    """``n / (K * n_class)`` per class; a class absent from training gets weight 0."""
    counts = np.bincount(np.asarray(labels, dtype=int), minlength=n_classes).astype(float)
    weights = np.where(counts > 0, len(labels) / (n_classes * np.maximum(counts, 1.0)), 0.0)
    return weights


class TrainingModule(pl.LightningModule):
    """Any model of :func:`alertlib.learn.models.create_model` with its loss, optimiser and schedule.

    Records the per-epoch mean training and validation losses and the learning rate in ``history``.
    """

    def __init__(self, model: nn.Module, loss: nn.Module, objective: str, settings: dict, steps_per_epoch: int):
        super().__init__()
        self.model = model
        self.loss = loss
        self.objective = objective
        self.settings = settings
        self.steps_per_epoch = max(1, int(steps_per_epoch))
        # Not registered as a submodule: the compiled wrapper shares the model's parameters.
        self.__dict__["forward_model"] = torch.compile(model) if settings["compile"] else model
        self.history: list[dict] = []
        self._sums = {"train": [0.0, 0], "val": [0.0, 0]}
        self._epoch_start = time.perf_counter()
        self._train_time = 0.0

    def forward(self, inputs) -> torch.Tensor:
        """Logits of a batch: images, or (images, features) for an image + metadata model."""
        images, *features = inputs if isinstance(inputs, (tuple, list)) else (inputs,)
        if self.settings["channels_last"]:
            images = images.contiguous(memory_format=torch.channels_last)
        return self.forward_model(images, *features)

    def _loss(self, batch) -> tuple[torch.Tensor, int]:
        inputs, targets = batch
        logits = self(inputs).float()
        if self.objective == "binary":
            loss = self.loss(logits.squeeze(-1), targets.float())
        elif self.objective == "multiclass":
            loss = self.loss(logits, targets.long())
        else:
            loss = self.loss(logits, targets.float())
        return loss, len(targets)

    def _accumulate(self, stage: str, loss: torch.Tensor, n: int) -> None:
        # A float64 sum kept on the device (the same arithmetic as Python floats): reading the loss
        # every batch would make the host wait for the GPU at each step.
        self._sums[stage][0] = self._sums[stage][0] + loss.detach().double() * n
        self._sums[stage][1] += n

    def training_step(self, batch, batch_index):
        loss, n = self._loss(batch)
        self._accumulate("train", loss, n)
        return loss

    def validation_step(self, batch, batch_index):
        loss, n = self._loss(batch)
        self._accumulate("val", loss, n)
        return loss

    def on_train_epoch_start(self) -> None:
        self._sums = {"train": [0.0, 0], "val": [0.0, 0]}
        self._epoch_start = time.perf_counter()

    def on_validation_epoch_start(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)  # the epoch's training ends when the GPU's queue does
        self._train_time = time.perf_counter() - self._epoch_start

    def on_validation_epoch_end(self) -> None:
        # Lightning validates once the epoch's training batches are done: both sums are complete.
        if self.trainer.sanity_checking:
            return
        total, n, val_total, val_n = self._epoch_sums()
        self.history.append(
            {
                "epoch": int(self.current_epoch),
                "train_loss": total / n if n else float("nan"),
                "val_loss": val_total / val_n if val_n else float("nan"),
                "lr": float(self.trainer.optimizers[0].param_groups[0]["lr"]),
                "train_time_s": self._train_time,
                "train_samples": int(n),
            }
        )

    def _epoch_sums(self) -> tuple[float, float, float, float]:
        """The epoch's loss sums and counts (training, validation), over all processes."""
        sums = [float(value) for value in (*self._sums["train"], *self._sums["val"])]
        if self.trainer.world_size > 1:
            tensor = torch.tensor(sums, dtype=torch.float64, device=self.device)
            sums = self.trainer.strategy.reduce(tensor, reduce_op="sum").tolist()
        return tuple(sums)

    def configure_optimizers(self):
        settings = self.settings
        optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=settings["lr"], betas=(0.9, 0.999), weight_decay=settings["weight_decay"]
        )
        warmup = settings["warmup_epochs"] * self.steps_per_epoch
        total = settings["epochs"] * self.steps_per_epoch
        floor = settings["lr_floor"]
        schedule = warmup_cosine_schedule(optimizer, warmup, total, floor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


class RelativeEarlyStopping(pl.Callback):
    """Stop when the validation loss has not improved by ``min_rel_improvement`` for ``patience`` epochs.

    Keeps a copy of the weights of the epoch with the lowest validation loss and restores them when
    training ends (stopped early or not).
    """

    def __init__(self, patience: int = 5, min_rel_improvement: float = 0.005):
        self.patience = int(patience)
        self.min_rel_improvement = float(min_rel_improvement)
        self.reference = math.inf  # the loss the next improvement is measured against
        self.best = math.inf
        self.best_epoch = -1
        self.best_state: dict | None = None
        self.waited = 0
        self.stopped_epoch: int | None = None

    def on_validation_end(self, trainer, pl_module: TrainingModule) -> None:
        if not pl_module.history or trainer.sanity_checking:
            return
        loss = pl_module.history[-1]["val_loss"]
        if not math.isfinite(loss):
            return
        if loss < self.best:
            self.best, self.best_epoch = loss, pl_module.history[-1]["epoch"]
            self.best_state = {k: v.detach().to("cpu", copy=True) for k, v in pl_module.model.state_dict().items()}
        if not math.isfinite(self.reference) or loss < self.reference * (1.0 - self.min_rel_improvement):
            self.reference, self.waited = loss, 0
        else:
            self.waited += 1
            if self.waited >= self.patience:
                self.stopped_epoch = pl_module.history[-1]["epoch"]
                trainer.should_stop = True

    def on_fit_end(self, trainer, pl_module: TrainingModule) -> None:
        if self.best_state is not None:
            pl_module.model.load_state_dict(self.best_state)


class EpochProgress(pl.Callback):
    """One tqdm bar over epochs (notebook-friendly), showing the latest losses; each epoch is also
    reported to the study runner's terminal (:func:`alertlib.core.progress.epoch`)."""

    def __init__(self, total_epochs: int, description: str):
        self.total_epochs = total_epochs
        self.description = description
        self.bar = None

    def on_fit_start(self, trainer, pl_module) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=self.total_epochs, desc=self.description, unit="epoch", leave=False)

    def on_validation_end(self, trainer, pl_module: TrainingModule) -> None:
        if self.bar is not None and pl_module.history and not trainer.sanity_checking:
            last = pl_module.history[-1]
            self.bar.set_postfix(train=f"{last['train_loss']:.4f}", val=f"{last['val_loss']:.4f}")
            self.bar.update(1)
            progress.epoch(last["epoch"], self.total_epochs, train_loss=last["train_loss"], val_loss=last["val_loss"])

    def on_fit_end(self, trainer, pl_module) -> None:
        if self.bar is not None:
            self.bar.close()


class DevicePlacement(pl.Callback):
    """Loads the device path's splits onto the training process's device when fitting starts."""

    def __init__(self, datasets: list[DeviceTriplets]):
        self.datasets = datasets

    def on_fit_start(self, trainer, pl_module) -> None:
        for dataset in self.datasets:
            dataset.place(pl_module.device)


HISTORY_COLUMNS = ("epoch", "train_loss", "val_loss", "lr", "train_time_s", "train_samples")
_HISTORY_KEY, _STOPPING_KEY = "alertlib/history", "alertlib/stopping"


class ReleaseProcessGroup(pl.Callback):
    """In a process that Lightning started for data-parallel training (``ddp_spawn``, ``ddp_notebook``):
    wait for every rank, then destroy the process group at teardown. A rank that exits with gloo's
    threads still running can abort ("terminate called without an active exception")."""

    def teardown(self, trainer, pl_module, stage: str) -> None:
        import multiprocessing

        import torch.distributed as dist

        if multiprocessing.parent_process() is None or not (dist.is_available() and dist.is_initialized()):
            return
        dist.barrier()
        dist.destroy_process_group()


class FitRecord(pl.Callback):
    """Puts the history and the early-stopping outcome in ``trainer.callback_metrics`` when fitting ends.

    Those tensors are what Lightning's spawn and fork launchers send back to the main process (with
    the weights), so that :func:`fit` can return them when other processes did the training.
    """

    def __init__(self, stopping: RelativeEarlyStopping):
        self.stopping = stopping

    def on_fit_end(self, trainer, pl_module: TrainingModule) -> None:
        rows = [[float(row[c]) for c in HISTORY_COLUMNS] for row in pl_module.history]
        history = torch.tensor(rows, dtype=torch.float64).reshape(-1, len(HISTORY_COLUMNS))
        stopped = -1 if self.stopping.stopped_epoch is None else self.stopping.stopped_epoch
        outcome = torch.tensor([self.stopping.best, self.stopping.best_epoch, stopped], dtype=torch.float64)
        trainer.callback_metrics.update({_HISTORY_KEY: history, _STOPPING_KEY: outcome})


def recorded_outcome(trainer: pl.Trainer) -> tuple[pd.DataFrame, float, int, int | None]:
    """History, best validation loss, best epoch and stopped epoch that :class:`FitRecord` recorded."""
    history = pd.DataFrame(trainer.callback_metrics[_HISTORY_KEY].numpy(), columns=list(HISTORY_COLUMNS))
    history = history.astype({"epoch": int, "train_samples": int})
    best, best_epoch, stopped = trainer.callback_metrics[_STOPPING_KEY].tolist()
    return history, best, int(best_epoch), None if stopped < 0 else int(stopped)


@dataclass
class FitResult:
    """What :func:`fit` returns: the trained model (best epoch's weights), curves and timings."""

    model: nn.Module
    history: pd.DataFrame
    best_epoch: int
    best_val_loss: float
    stopped_epoch: int | None
    wall_time_s: float
    settings: dict


def _whole_batch(batch):
    return batch  # DeviceTriplets' items are batches already


def training_loaders(
    train_dataset: Dataset, val_dataset: Dataset, settings: dict, seed: int, trainer: pl.Trainer
) -> tuple[DataLoader, DataLoader, DataPathChoice]:
    """The training and validation loaders of the chosen data path, for each of the trainer's processes.

    Each process takes ``batch_size / world_size`` alerts per batch (:class:`EpochSampler`), so the
    effective batch is ``batch_size`` whatever the number of processes.
    """
    world_size = trainer.world_size
    if settings["batch_size"] % world_size:
        raise SettingError(f"batch_size {settings['batch_size']} does not split over {world_size} processes")
    batch_size = settings["batch_size"] // world_size
    datasets = [train_dataset, val_dataset]
    device = trainer.strategy.root_device
    launcher = getattr(trainer.strategy, "launcher", None)
    # A forked launch (Lightning's interactive-compatible one) fails once CUDA is initialised, as
    # querying the GPU's free memory would: "auto" takes the loader path there.
    forked = launcher is not None and launcher.is_interactive_compatible and device.type == "cuda"
    choice = choose_data_path(
        settings["data_path"], datasets, device, settings["device_data_dtype"], budget=0 if forked else None
    )
    if choice.path == "device":
        resident = [DeviceTriplets(dataset, batch_size, choice.dtype) for dataset in datasets]
        trainer.callbacks.append(DevicePlacement(resident))
        loaders = [
            DataLoader(
                dataset,
                batch_size=None,
                sampler=EpochBatchSampler(dataset, seed, shuffle=shuffle, num_replicas=world_size, pad=shuffle),
                collate_fn=_whole_batch,
            )
            for dataset, shuffle in zip(resident, (True, False), strict=True)
        ]
        return loaders[0], loaders[1], choice
    loaders = [
        DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=EpochSampler(dataset, seed, shuffle=shuffle, num_replicas=world_size, pad=shuffle),
            num_workers=settings["num_workers"],
            pin_memory=torch.cuda.is_available(),
            persistent_workers=False,
        )
        for dataset, shuffle in zip(datasets, (True, False), strict=True)
    ]
    return loaders[0], loaders[1], choice


def _trainer(settings: dict, on_gpu: bool, callbacks: list) -> pl.Trainer:
    return pl.Trainer(
        max_epochs=settings["epochs"],
        accelerator=settings["accelerator"],
        devices=settings["devices"],
        strategy=settings["strategy"],
        sync_batchnorm=True,  # acts only with several processes: batch statistics over the effective batch
        use_distributed_sampler=False,  # EpochSampler shards the seeded order itself
        precision="bf16-mixed" if on_gpu else "32-true",
        deterministic=not on_gpu,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=callbacks,
    )


def fit(
    model: nn.Module,
    train_dataset: Dataset,
    val_dataset: Dataset,
    objective: str,
    config: dict,
    loss: nn.Module | None = None,
    description: str = "training",
    callbacks: list | tuple = (),
) -> FitResult:
    """Train ``model`` with the authors' recipe and return it with its curves.

    Parameters
    ----------
    model:
        A model from :func:`alertlib.learn.models.create_model` (its ``init`` picks the default lr).
    train_dataset, val_dataset:
        Datasets of ``(image, target)``; their ``set_epoch`` (if any) is called every epoch.
    objective:
        ``binary``, ``multiclass`` or ``votes``.
    config:
        Keys of :data:`TRAINING_DEFAULTS` (others are ignored) and ``seed``.
    loss:
        The loss module; default :func:`make_loss` without weights.
    callbacks:
        More Lightning callbacks (e.g. a benchmark's profiler).

    The returned ``settings`` say which data path was taken (``data_path``, ``device_data_dtype``).
    """
    quiet_lightning()
    settings = training_settings(config)
    if settings["lr"] is None:
        settings["lr"] = learning_rate_for(getattr(model, "init", "scratch"))
    seed = int(config.get("seed", 0))
    on_gpu = torch.cuda.is_available() and settings["accelerator"] in ("auto", "gpu", "cuda")
    if settings["channels_last"]:
        model = model.to(memory_format=torch.channels_last)
    stopping = RelativeEarlyStopping(settings["patience"], settings["min_rel_improvement"])
    all_callbacks = [stopping, FitRecord(stopping), ReleaseProcessGroup(), *callbacks]
    if settings["progress"]:
        all_callbacks.append(EpochProgress(settings["epochs"], description))
    trainer = _trainer(settings, on_gpu, all_callbacks)
    train_loader, val_loader, choice = training_loaders(train_dataset, val_dataset, settings, seed, trainer)
    settings.update(data_path=choice.path, device_data_dtype=choice.dtype)
    module = TrainingModule(model, loss or make_loss(objective), objective, settings, len(train_loader))
    start = time.perf_counter()
    with warnings.catch_warnings():
        quiet_lightning()
        trainer.fit(module, train_loader, val_loader)
    wall_time = time.perf_counter() - start
    history, best_val_loss, best_epoch, stopped_epoch = recorded_outcome(trainer)
    return FitResult(
        model=module.model,
        history=history,
        best_epoch=best_epoch,
        best_val_loss=best_val_loss,
        stopped_epoch=stopped_epoch,
        wall_time_s=wall_time,
        settings=settings,
    )


@torch.no_grad()
def predict_logits(model: nn.Module, dataset: Dataset, batch_size: int = 256) -> np.ndarray:
    """Raw outputs (N, num_outputs) of ``model`` on ``dataset`` (items ``(images or (images, features), target)``),
    in order, in eval mode."""
    model.eval()
    device = next(model.parameters()).device
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0)
    outputs = []
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)
    )
    with autocast:
        for inputs, _ in loader:
            parts = inputs if isinstance(inputs, (tuple, list)) else (inputs,)
            outputs.append(model(*(part.to(device) for part in parts)).float().cpu())
    return torch.cat(outputs).numpy() if outputs else np.zeros((0, 1), dtype=np.float32)
