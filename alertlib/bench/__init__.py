"""The efficiency benchmark: inference speed and memory of every study model, side by side with btsbot, against the device's limit.

What is measured, for each model of the study (:data:`alertlib.learn.models.STUDY_ARCHS`), each
implementation (``alertlib``: our :func:`alertlib.learn.models.create_model`; ``btsbot``: the ``btsbot``
package's own classes ``um_cnn``, ``ConvNeXt`` and ``MaxViT`` for the same architecture), each number
format (``float32``; ``bfloat16``) and each inference variant (:data:`alertlib.learn.inference.VARIANTS`):

- ``alerts_per_s`` and ``latency_ms`` (one forward pass of a batch) at each batch size: warm-up
  calls first, then repeated calls until both a minimum count and a minimum time are reached; the
  median is reported with its inter-quartile range. GPU calls are timed with CUDA events.
- ``peak_mem_mb``: the memory the model and its inference take beyond an idle process. On CPU, the
  peak resident set size (``getrusage``) of an isolated subprocess, minus its resident size before
  the model was built; on GPU, ``torch.cuda.max_memory_allocated`` during the timed calls (weights,
  activations and workspace of the algorithms cuDNN chose; not the CUDA context).
  ``peak_mem_warmup_mb`` is the peak of the warm-up calls, which on GPU includes cuDNN's algorithm
  search (``cudnn.benchmark``) and can be many times larger; on CPU the two are the same number.
  Each (model, implementation, format, variant) runs in its own subprocess on CPU (in one process
  on GPU, from a per-job baseline), its batch sizes in increasing order, so the peak after batch
  ``b`` is that of batch ``b``.
- ``params`` and ``macs`` (multiply-adds per alert, ``torch.utils.flop_counter``).
- **the limit**: the device's own rate on a large matrix product (float32, and bfloat16 where
  asked), measured at the start and at the end of the same run (the better of the two is the
  ceiling, both are kept); ``limit_fraction`` = achieved FLOP/s (2 x ``macs`` x ``alerts_per_s``)
  divided by the ceiling of the same format.
- **the roofline**: the device's memory bandwidth (large tensor copies and additions, also at the
  start and the end of the run), every operator's FLOPs and bytes moved (counted on the ``meta``
  device), and the limit that takes each operator at the lower of the matrix-product rate and the
  bandwidth times its arithmetic intensity; ``roofline_fraction`` = alerts per second over that limit
  (:mod:`~alertlib.bench.roofline`).

Every row carries the machine stamp (:func:`alertlib.core.provenance.machine_stamp`) and the code version.
float32 means strict float32 on GPU: TF32 is switched off for both the models and the ceiling, so
the fraction compares like with like.

Modules, in the order a run uses them: :mod:`~alertlib.bench.zoo` (the models, ours and btsbot's),
:mod:`~alertlib.bench.timing` (timed calls, memory, the matrix-product ceiling),
:mod:`~alertlib.bench.roofline` (the memory bandwidth, operators' bytes and the roofline limit),
:mod:`~alertlib.bench.measure` (one job, in a subprocess or in this process),
:mod:`~alertlib.bench.runner` (settings, jobs, the run and its journal), :mod:`~alertlib.bench.tables`
(reading the tables). The claims drawn from them are in :mod:`alertlib.report.efficiency`, the command
line in :mod:`alertlib.cli.benchmark`, and scoring's choice of format and variant in
:mod:`alertlib.learn.inference`.
"""
