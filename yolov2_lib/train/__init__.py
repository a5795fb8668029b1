"""Training end to end: the schedule, checkpoints, resuming, mixed precision, DDP, evaluation.

Chapter 9 (training end to end, evaluation, detections on real images)
explains this module.

:class:`Trainer` runs the paper's recipe by default -- SGD, momentum 0.9,
weight decay 5e-4, learning rate 1e-3 with darknet's burn-in
(``lr * (i / burn_in) ** 4`` for the first ``burn_in`` updates) and divided by
10 at 60 and 90 of 160 epochs -- on multi-scale batches from
:class:`~yolov2_lib.data.sampler.MultiScaleBatchSampler`, with the loss of
:mod:`yolov2_lib.loss` and the ``seen`` image counter its warm-up needs.
Every knob is a field of :class:`TrainConfig`.

Choices:

- Weight decay applies to convolution weights only, not to batch-norm scales
  and shifts nor to biases: darknet's ``update_convolutional_layer`` decays
  ``l.weights`` alone.
- ``seen`` counts the images of the *global* batch, before the forward pass,
  as darknet's ``train_network_datum`` does, and the learning rate of update
  ``i`` (1-based) is darknet's ``get_current_rate`` at batch ``i``.
- Checkpoints hold only tensors and plain Python containers, so they load
  with ``torch.load(weights_only=True)``; they are written to a temporary
  file, flushed to disk and renamed over the old one (``os.replace``), so a
  crash never leaves a partial checkpoint. Resuming restores model, EMA,
  optimizer, schedule, gradient scaler, the sampler's place in its epoch, the
  random states and ``seen``: on the CPU a run killed at any point and resumed
  ends with the same weights, bit for bit, as an uninterrupted one. ``best.pt``
  is written before ``last.pt``: a kill between the two leaves the older
  ``last.pt``, and the resumed run evaluates again and rewrites ``best.pt``.
  Only weights-only files are read: a file holding other Python objects is
  refused, since unpickling them could run code.
- Resuming with another learning rate, momentum, weight decay or EMA decay
  applies the new value from the next update, and the provenance records every
  changed setting with that update. Settings a run cannot change midway (the
  optimizer, the network, the batch plan: batch size, sizes, seed, images) are
  refused with an error naming them.
- A non-finite loss (or, without a gradient scaler, a non-finite gradient
  norm) stops training with :class:`NonFiniteLossError` before the optimizer
  step; nothing is written after it, so the last checkpoint is the last good one.
- Several processes (``torchrun``) train with PyTorch's own
  ``DistributedDataParallel``: each rank takes its slice of the same global
  batch. On CUDA batch norm is synchronised (``nn.SyncBatchNorm``). In torch
  2.13 ``SyncBatchNorm`` refuses CPU tensors ("expected input tensor to be on
  GPU"), so with the gloo backend on CPU each process normalises with the
  statistics of its own slice: the parameters then equal one process that
  accumulates the same slices (``accumulate = world size``), and with
  ``freeze_bn`` they equal one process with the whole batch (tested).
- On the CPU the model runs channels-last by default (oneDNN's convolutions
  are faster so). Mixed precision (``amp="auto"``) is used only where the
  hardware computes it natively: bf16 on CPUs with AVX512-BF16 or AMX and on
  GPUs of compute capability 8.0+, fp16 with a gradient scaler on older GPUs,
  float32 everywhere else (emulated bf16 is slower than float32).
- A run can have a wall-time budget (``max_seconds``): it then stops when the
  budget is spent, evaluations included, keeping time for the final
  evaluation; the rate's steps given as fractions happen at those fractions
  of the budget (or of ``max_iterations``, whichever comes first), so a
  slower machine runs the same schedule over fewer updates.
- An exponential moving average of the weights (:class:`ModelEMA`) is what
  evaluation and ``best.pt`` use: single checkpoints' scores swing from one
  to the next, the average's much less.


Where each part lives:

- :mod:`yolov2_lib.config`: :class:`TrainConfig`, every default once;
- :mod:`yolov2_lib.train.schedule`: :class:`DarknetSchedule` and :class:`ModelEMA`;
- :mod:`yolov2_lib.train.step`: one update (:func:`sgd_update`);
- :mod:`yolov2_lib.train.trainer`: the loop (:class:`Trainer`);
- :mod:`yolov2_lib.train.distributed`, :mod:`yolov2_lib.train.overfit`;
- :mod:`yolov2_lib.checkpoint`: saving, loading and exporting;
- :mod:`yolov2_lib.precision`: the precision policy;
- :mod:`yolov2_lib.inference`: evaluation and detection over many images.

Every name is importable from ``yolov2_lib.train`` as well.
"""

from ..checkpoint import (CHECKPOINT_FORMAT, WEIGHTS_FORMAT, Checkpointed, export_weights, load_checkpoint,
                          model_from_checkpoint, save_checkpoint)
from ..config import TrainConfig, first_look
from ..inference import detect_images, evaluate_model
from ..precision import autocast_dtype, precision_name
from ..runtime import provenance
from .distributed import init_distributed
from .overfit import OVERFIT_COLUMNS, OverfitRun, overfit_batch
from .schedule import DarknetSchedule, ModelEMA
from .step import NonFiniteLossError, sgd_update
from .trainer import Trainer, TrainingInterrupted

__all__ = [
    "CHECKPOINT_FORMAT",
    "WEIGHTS_FORMAT",
    "TrainConfig",
    "DarknetSchedule",
    "ModelEMA",
    "NonFiniteLossError",
    "Trainer",
    "TrainingInterrupted",
    "sgd_update",
    "Checkpointed",
    "autocast_dtype",
    "precision_name",
    "first_look",
    "init_distributed",
    "evaluate_model",
    "detect_images",
    "OverfitRun",
    "OVERFIT_COLUMNS",
    "overfit_batch",
    "load_checkpoint",
    "model_from_checkpoint",
    "save_checkpoint",
    "export_weights",
    "provenance",
]
