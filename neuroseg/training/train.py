"""The training loop: classifier and segmenter trained side by side on the same batches."""

from __future__ import annotations

import math
import time
from pathlib import Path
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch
from torch import nn

from neuroseg.io.atomic import atomic_path
from neuroseg.models.precision import PRECISIONS, autocast as precision_autocast
from neuroseg.training.augment import RandomSliceAugment, random_crops
from neuroseg.training.cache import SliceCache


NETWORKS = ("strided", "resunet")
LOSSES = ("dice-ce", "dice-ce-image")


@dataclass
class TrainConfig:
    """One training recipe. The defaults are the v2 recipe, which beat v1 at the same CPU budget
    (docs/MODEL_CARD.md); ``network="resunet"`` with ``loss="dice-ce"``, ``ema=0`` and ``small_boost=0``
    is the v1 recipe (the shipped model's, trained on a GPU)."""

    size: int = 192
    context: int = 1
    network: str = "strided"
    seg_features: int = 16
    seg_depth: int = 4
    full_res_features: int = 8
    loss: str = "dice-ce-image"
    ema: float = 0.99  # decay of the weights' moving average (0: off); the average is what is saved
    small_boost: float = 1.0  # extra sampling weight of small-tumour slices and of a tumour's end slices
    crop: int = 128  # training crops of the augmented slices, in px (0: whole slices); inference takes whole slices
    tumour_crops: float = 1 / 3  # share of crops centred on a tumour pixel, where the slice has one
    precision: str = "auto"  # auto: bf16 autocast where the device computes it natively, else fp32
    threads: int | None = None
    cls_features: int = 16
    cls_layers: tuple = (1, 1, 1, 1)
    cls_pool: str = "avg"
    cls_stem_max_pool: bool = True
    cls_members: int = 1
    epochs: int = 60
    batch_size: int = 32
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    warmup_epochs: int = 2
    max_minutes: float | None = None
    seed: int = 0
    validate_dice: bool = True
    augment: dict = field(default_factory=lambda: asdict(RandomSliceAugment()))

    @property
    def classifier_seeds(self) -> list[int]:
        """Training seeds of the classifier's members: ``seed``, ``seed + 1``, ..."""
        return list(range(self.seed, self.seed + self.cls_members))

    @property
    def joint(self) -> bool:
        """One network gives mask and slice logits (v2); else a ResUNet beside a ResNet classifier (v1)."""
        return self.network == "strided"

    def preprocessing(self):
        from neuroseg.transforms import Preprocessing

        return Preprocessing(size=self.size, context_slices=self.context)

    def architecture(self) -> dict:
        channels = 2 * self.context + 1
        if self.joint:
            return {"shape": "joint",
                    "segmenter": {"class": "StridedResUNet", "in_channels": channels, "features": self.seg_features,
                                  "depth": self.seg_depth, "full_res_features": self.full_res_features}}
        return {
            "shape": "segmenter+classifier",
            "segmenter": {"class": "ResUNet", "in_channels": channels, "features": self.seg_features,
                          "depth": self.seg_depth},
            "classifier": {"class": "monai.networks.nets.ResNet", "in_channels": channels,
                           "features": self.cls_features, "layers": list(self.cls_layers),
                           "pool": self.cls_pool, "stem_max_pool": self.cls_stem_max_pool,
                           "members": self.cls_members},
        }


class SliceSampler:
    """Serves 2.5D batches from a cache held on the training device."""

    def __init__(self, cache: SliceCache, case_ids, context: int, device):
        from neuroseg.transforms import Preprocessing

        wanted = set(case_ids)
        rows = np.concatenate([np.arange(cache.offsets[i], cache.offsets[i + 1])
                               for i, c in enumerate(cache.case_ids) if c in wanted])
        self.rows = torch.as_tensor(rows, device=device)
        first = np.repeat(cache.offsets[:-1], np.diff(cache.offsets))
        last = np.repeat(cache.offsets[1:] - 1, np.diff(cache.offsets))
        self.first = torch.as_tensor(first, device=device)
        self.last = torch.as_tensor(last, device=device)
        self.images = torch.as_tensor(cache.images, device=device)
        self.masks = torch.as_tensor(cache.masks, device=device)
        self.labels = torch.as_tensor(cache.slice_labels, device=device).float()
        self.preprocessing = Preprocessing(size=cache.size, context_slices=context)
        self.quantum = float(cache.info["quantum"])
        self.areas = self.masks[self.rows].flatten(1).sum(1, dtype=torch.int32)

    def __len__(self) -> int:
        return len(self.rows)

    def batch(self, rows: torch.Tensor):
        # the same neighbour stacking as inference, bounded by each slice's own case
        images = self.preprocessing.stack(self.images, rows, self.first[rows], self.last[rows]).float() / self.quantum
        masks = self.masks[rows, None].float()
        return images, masks, self.labels[rows]

    def weights(self, small_boost: float, small_area: int = 400) -> torch.Tensor:
        """Sampling weight of each row: 1, plus ``small_boost`` for a small tumour area and again for a
        slice at either end of a tumour's run of slices (where the v1 classifier's misses were)."""
        has = self.areas > 0
        rows = self.rows
        before = self.labels[torch.maximum(rows - 1, self.first[rows])] > 0
        after = self.labels[torch.minimum(rows + 1, self.last[rows])] > 0
        end = has & ~(before & after)
        end |= has & ((rows == self.first[rows]) | (rows == self.last[rows]))
        small = has & (self.areas < small_area)
        return 1.0 + small_boost * (small.float() + end.float())


def train_networks(cache: SliceCache, train_ids, val_ids, config: TrainConfig, device, log=print,
                   segmenter: nn.Module | None = None, checkpoint=None):
    """Train the networks; returns ``(segmenter, classifier, history)`` from the last epoch.

    v2 (``config.joint``): one network, returned as ``segmenter`` with ``classifier`` None.
    v1: a ResUNet and a ResNet side by side; given a trained ``segmenter``, it is kept as it is
    and only the classifier is trained (about 40x cheaper, so a classifier can be retrained on a CPU).
    ``checkpoint`` (a path): the state is written there after every epoch, and a run is
    continued from it when it exists (``neuroseg train --resume``).
    """
    from neuroseg.models.store import build_networks

    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    fresh_segmenter, classifier = build_networks(replace(config, cls_members=1).architecture())
    train_segmenter = segmenter is None
    segmenter = fresh_segmenter if train_segmenter else segmenter.eval()
    # channels-last memory: about 1.7x faster training steps on the CPU (measured 204 -> 117 ms/slice)
    nets = [net.to(device, memory_format=torch.channels_last) for net in (segmenter, classifier) if net is not None]
    segmenter, classifier = nets[0], (nets[1] if len(nets) > 1 else None)
    shape = _shape(config, segmenter, classifier)  # built once: the training loop asks it every step
    train = SliceSampler(cache, train_ids, config.context, device)
    val = SliceSampler(cache, val_ids, config.context, device) if val_ids else None
    augment = RandomSliceAugment(**config.augment)
    losses = _Losses(config.loss)
    trained = [net for net, on in ((segmenter, train_segmenter), (classifier, True)) if net is not None and on]
    params = [p for net in trained for p in net.parameters()]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    averages = [_average(net, config.ema) for net in trained] if config.ema else []
    autocast = precision_autocast(device, config.precision)
    log(f"training precision: {'bf16 autocast' if autocast._enabled else 'fp32'} on {device.type}"
        + (f", {config.crop} px crops" if config.crop else ", whole slices"))
    sample_weights = train.weights(config.small_boost) if config.small_boost else None
    steps_per_epoch = max(1, len(train) // config.batch_size)
    state = {"epoch": 0, "epochs": config.epochs, "step": 0, "history": [], "seconds": 0.0}
    if checkpoint is not None and Path(checkpoint).exists():
        state = _load_checkpoint(checkpoint, trained, averages, optimizer, device)
        log(f"resuming from {checkpoint} after epoch {state['epoch']} of {state['epochs']}")
    history, step, epochs = state["history"], state["step"], state["epochs"]
    started = time.perf_counter() - state["seconds"]
    epoch = state["epoch"]
    while epoch < epochs:
        for net in trained:
            net.train()
        if not train_segmenter:
            segmenter.eval()
        order = (train.rows[torch.multinomial(sample_weights, len(train), replacement=True)]
                 if sample_weights is not None else train.rows[torch.randperm(len(train), device=device)])
        totals = np.zeros(2)
        for b in range(steps_per_epoch):
            lr = _learning_rate(step, steps_per_epoch, epochs, config)
            for group in optimizer.param_groups:
                group["lr"] = lr
            images, masks, labels = train.batch(order[b * config.batch_size:(b + 1) * config.batch_size])
            with torch.no_grad():
                images, masks = augment(images, masks)
                if config.crop:
                    images, masks = random_crops(images, masks, config.crop, config.tumour_crops)
                    labels = masks.flatten(1).amax(1)  # the slice head sees the crop, so it is asked about the crop
                images = images.contiguous(memory_format=torch.channels_last)
            with autocast:
                seg_logits, cls_logits = shape.outputs(images, with_mask=train_segmenter)
                loss_seg = losses.mask(seg_logits.float(), masks) if train_segmenter else torch.zeros(())
                loss_cls = losses.slice(cls_logits.float()[:, 0], labels)
            optimizer.zero_grad(set_to_none=True)
            (loss_seg + loss_cls).backward()
            optimizer.step()
            for net, average in zip(trained, averages):
                average.update_parameters(net)
            totals += [loss_seg.item(), loss_cls.item()]
            step += 1
        epoch += 1
        elapsed = time.perf_counter() - started
        if config.max_minutes is not None and epoch <= 3 and epoch > state["epoch"]:
            epochs = _epochs_within(config, epoch, elapsed, history)  # fit the schedule to the time allowed
        record = {"epoch": epoch, "of": epochs, "seg_loss": totals[0] / steps_per_epoch,
                  "cls_loss": totals[1] / steps_per_epoch, "seconds": round(elapsed, 1), "lr": lr}
        if val is not None and (epoch % 5 == 0 or epoch == epochs):
            # a fixed segmenter's Dice does not change: measure it once, at the end
            with_dice = config.validate_dice and (train_segmenter or epoch == epochs)
            seg_eval, cls_eval = _evaluated(segmenter, classifier, averages, train_segmenter)
            record.update(validate(_shape(config, seg_eval, cls_eval), val, cache, val_ids, autocast, with_dice))
        history.append(record)
        if checkpoint is not None:  # before the log line, so an epoch that was reported is never lost
            _save_checkpoint(checkpoint, trained, averages, optimizer,
                             {"epoch": epoch, "epochs": epochs, "step": step, "history": history, "seconds": elapsed})
        log(record)
    segmenter, classifier = _evaluated(segmenter, classifier, averages, train_segmenter)
    return segmenter.eval(), (classifier.eval() if classifier is not None else None), history


def _shape(config: TrainConfig, segmenter, classifier):
    """The model's shape (:mod:`neuroseg.models.shape`) over these networks, as the recipe names it."""
    from neuroseg.models.shape import build_shape

    return build_shape(config.architecture(), segmenter, classifier)


class _Losses:
    """``dice-ce``: Dice over the whole batch plus cross-entropy (v1). ``dice-ce-image``: the same,
    plus the mean Dice of each tumour slice on its own, so a small tumour counts as much as a
    large one (batch Dice lets a few large tumours dominate)."""

    def __init__(self, name: str):
        from monai.losses import DiceCELoss, DiceLoss

        if name not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)}, not {name!r}")
        self.batch_dice_ce = DiceCELoss(sigmoid=True, batch=True)
        self.image_dice = DiceLoss(sigmoid=True, batch=False, reduction="none") if name == "dice-ce-image" else None
        self.bce = nn.BCEWithLogitsLoss()

    def mask(self, logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        loss = self.batch_dice_ce(logits, masks)
        if self.image_dice is not None:
            positive = masks.flatten(1).amax(1) > 0
            if positive.any():
                loss = loss + self.image_dice(logits[positive], masks[positive]).mean()
        return loss

    def slice(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.bce(logits, labels)


def _average(network: nn.Module, decay: float):
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    # use_buffers: batch-norm statistics are averaged too, so the average is usable as it is
    return AveragedModel(network, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def _evaluated(segmenter, classifier, averages, train_segmenter):
    """The networks to validate and save: the moving averages of the trained ones when kept."""
    if not averages:
        return segmenter, classifier
    trained = iter(average.module for average in averages)
    segmenter = next(trained) if train_segmenter else segmenter
    classifier = next(trained) if classifier is not None else None
    return segmenter, classifier


def _save_checkpoint(path, trained, averages, optimizer, progress: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"networks": [net.state_dict() for net in trained],
             "averages": [average.state_dict() for average in averages],
             "optimizer": optimizer.state_dict(), "progress": progress,
             "rng": torch.get_rng_state()}
    with atomic_path(path) as tmp:  # an interruption while writing leaves the previous checkpoint whole
        torch.save(state, tmp)


def _load_checkpoint(path, trained, averages, optimizer, device) -> dict:
    state = torch.load(path, map_location=device, weights_only=False)
    if len(state["networks"]) != len(trained) or len(state["averages"]) != len(averages):
        raise ValueError(f"{path} was written by another training recipe")
    for net, saved in zip(trained, state["networks"]):
        net.load_state_dict(saved)
    for average, saved in zip(averages, state["averages"]):
        average.load_state_dict(saved)
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["rng"])
    return state["progress"]


def train_classifier_members(cache: SliceCache, train_ids, val_ids, config: TrainConfig, device, log, segmenter,
                             deadline: float | None = None):
    """Further classifiers for an ensemble, each trained alone (seeds ``seed + 1``, ...) beside a
    fixed segmenter; returns them with their histories and their time budgets in minutes.

    With a ``deadline`` (a ``time.perf_counter()`` value), each member gets an equal part of
    the time left, so all of them end by it.
    """
    members, histories, budgets = [], [], []
    for i, seed in enumerate(config.classifier_seeds[1:], start=2):
        budget = minutes_left(deadline, config.cls_members - i + 1)
        log(f"classifier {i} of {config.cls_members} (training seed {seed}"
            + (f", {budget:.2f} minutes)" if budget is not None else ")"))
        member_config = replace(config, cls_members=1, seed=seed, max_minutes=budget)
        _, member, history = train_networks(cache, train_ids, val_ids, member_config, device, log, segmenter)
        members.append(member)
        histories.append(history)
        budgets.append(budget)
    return members, histories, budgets


def minutes_left(deadline: float | None, trainings_left: int) -> float | None:
    """The next training's fair part of the time up to ``deadline``; None without a deadline."""
    if deadline is None:
        return None
    return max(0.0, deadline - time.perf_counter()) / 60 / trainings_left


def validate_model(segmenter, classifier, cache: SliceCache, val_ids, config: TrainConfig, device) -> dict:
    autocast = precision_autocast(device, config.precision)
    val = SliceSampler(cache, val_ids, config.context, device)
    return validate(_shape(config, segmenter, classifier), val, cache, val_ids, autocast, config.validate_dice)


def _epochs_within(config: TrainConfig, epoch: int, elapsed: float, history: list) -> int:
    """Epochs that fit in ``max_minutes``, fitted again after each of the first three epochs.

    The first epoch (warm-up, kernel tuning, or a machine busy for a while) is not typical: from
    the second on, the fastest epoch since then sets the pace, so one slow epoch cannot cut the
    schedule short for good (a slow first epoch once left a 14-minute run 2 epochs).
    """
    if epoch == 1:
        per_epoch = elapsed
    else:
        ends = [r["seconds"] for r in history] + [elapsed]
        per_epoch = max(1e-3, min(b - a for a, b in zip(ends[:-1], ends[1:])))  # logged seconds are rounded
    budget = config.max_minutes * 60 * 0.95 - elapsed  # 5% for validation passes
    return min(config.epochs, max(epoch, epoch + int(budget / per_epoch)))


def _learning_rate(step: int, steps_per_epoch: int, epochs: int, config: TrainConfig) -> float:
    warmup = config.warmup_epochs * steps_per_epoch
    if step < warmup:
        return config.learning_rate * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, epochs * steps_per_epoch - warmup))
    return config.learning_rate * 0.5 * (1 + math.cos(math.pi * progress))


@torch.no_grad()
def validate(shape, val: SliceSampler, cache: SliceCache, val_ids, autocast, with_dice: bool = True) -> dict:
    """Per-patient Dice on the model grid and the classifier's slice accuracy and ROC AUC."""
    from monai.metrics import compute_roc_auc

    for network in shape.networks:
        network.eval()
    dices, scores, truths = [], [], []
    for case_id in val_ids:
        part = cache.case_slices(case_id)
        rows = torch.arange(part.start, part.stop, device=val.rows.device)
        inter = union = 0.0
        for chunk in rows.split(64):
            images, masks, labels = val.batch(chunk)
            with autocast:
                seg_logits, cls_logits = shape.outputs(images, with_mask=with_dice)
                scores.append(cls_logits.float()[:, 0])
                truths.append(labels)
                if with_dice:
                    pred = seg_logits.float() > 0
                    inter += float((pred & (masks > 0)).sum())
                    union += float(pred.sum() + masks.sum())
        dices.append(2 * inter / union if union else 1.0)
    scores, truths = torch.cat(scores), torch.cat(truths)
    one_class = bool((truths == truths[0]).all())  # then ROC AUC is undefined: None, not MONAI's NaN and warning
    metrics = {"val_slice_accuracy": float(((scores > 0).float() == truths).float().mean()),
               "val_slice_auc": None if one_class else float(compute_roc_auc(scores.cpu(), truths.cpu()))}
    if with_dice:
        metrics.update(val_dice_mean=float(np.mean(dices)), val_dice_median=float(np.median(dices)))
    return metrics
