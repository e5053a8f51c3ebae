"""``neuroseg train`` as a library call: data -> cache -> split -> train -> model folder."""

from __future__ import annotations

import json
import math
import platform
import sys
import time
from dataclasses import asdict, replace
from datetime import datetime, timezone
from pathlib import Path

import torch

from neuroseg.errors import InputError
from neuroseg.io.datasets import list_cases
from neuroseg.training.cache import SliceCache, build_cache, fingerprint, patient_folds
from neuroseg.models.classifier import ClassifierEnsemble
from neuroseg.training.train import (LOSSES, NETWORKS, PRECISIONS, TrainConfig, minutes_left, train_classifier_members, train_networks,
                                     validate_model)

MODEL_NAME = "neuroseg-lgg-flair"
CHECKPOINT = "checkpoint.pt"


def check_options(config: TrainConfig, folds: int, split_seed: int) -> None:
    """Refuse option values that would fail or mean nothing, before any slice is prepared
    (``--fold`` is checked by :func:`check_folds`, once the cases are listed)."""
    from neuroseg.models.classifier import POOLS

    _at_least("--epochs", config.epochs, 1)
    _at_least("--batch-size", config.batch_size, 2, " (batch normalisation needs 2 slices per batch)")
    _at_least("--features", config.seg_features, 1)
    _at_least("--classifier-features", config.cls_features, 1)
    _at_least("--classifier-members", config.cls_members, 1)
    _at_least("--folds", folds, 1, " (1: train on every patient, validate on none)")
    for option, seed in (("--seed", split_seed), ("--train-seed", config.seed)):
        if not 0 <= seed < 2**32:
            raise InputError(f"{option} must be in 0..{2**32 - 1}, not {seed}")
    # the segmenter halves the slice seg_depth times (once more for the strided network's stem)
    step = 2 ** (config.seg_depth + config.joint)
    smallest = 2 ** (config.seg_depth + 1)  # a bottleneck of at least 1 (v2) or 2 (v1) pixels
    if config.size < smallest or config.size % step:
        nearest = max(smallest, round(config.size / step) * step)
        raise InputError(f"--size must be a multiple of {step} and at least {smallest}, not {config.size} "
                         f"(try --size {nearest})")
    if config.max_minutes is not None and not 0 < config.max_minutes < math.inf:
        raise InputError(f"--max-minutes must be more than 0, not {config.max_minutes:g}")
    if not 0 < config.learning_rate < math.inf:
        raise InputError(f"--learning-rate must be more than 0, not {config.learning_rate:g}")
    if config.network not in NETWORKS:
        raise InputError(f"--network must be one of {', '.join(NETWORKS)}, not {config.network!r}")
    if config.loss not in LOSSES:
        raise InputError(f"--loss must be one of {', '.join(LOSSES)}, not {config.loss!r}")
    if not 0 <= config.ema < 1:
        raise InputError(f"--ema must be in [0, 1), not {config.ema:g}")
    if config.small_boost < 0:
        raise InputError(f"--small-boost must be 0 or more, not {config.small_boost:g}")
    if config.precision not in PRECISIONS:
        raise InputError(f"--precision must be one of {', '.join(PRECISIONS)}, not {config.precision!r}")
    if config.crop and (config.crop % step or config.crop < smallest):  # a crop of --size or more: whole slices
        raise InputError(f"--crop must be 0 (whole slices) or a multiple of {step} of at least {smallest}, "
                         f"not {config.crop}")
    if not 0 <= config.tumour_crops <= 1:
        raise InputError(f"--tumour-crops must be in [0, 1], not {config.tumour_crops:g}")
    if config.threads is not None and config.threads < 1:
        raise InputError(f"--threads must be at least 1, not {config.threads}")
    if config.joint and config.cls_members > 1:
        raise InputError("--classifier-members needs --network resunet (the strided network classifies "
                         "slices with its own head)")
    if config.cls_pool not in POOLS:
        raise InputError(f"--classifier-pool must be one of {', '.join(POOLS)}, not {config.cls_pool!r}")


def _at_least(option: str, value: int, minimum: int, why: str = "") -> None:
    if value < minimum:
        raise InputError(f"{option} must be at least {minimum}{why}, not {value}")


def check_folds(case_count: int, folds: int, fold: int) -> None:
    """A split needs a patient in every fold."""
    if folds == 1:
        if fold != 0:
            raise InputError(f"--fold must be 0 with --folds 1, not {fold}")
        if case_count < 1:
            raise InputError("the training data holds no patient")
        return
    if case_count < 2:
        raise InputError(f"the training data holds {case_count} patient(s); training needs at least 2 "
                         "(one is held out for validation)")
    if folds > case_count:
        raise InputError(f"--folds {folds} is more than the {case_count} patients in the training data: "
                         f"use --folds {min(case_count, 5)} or fewer")
    if not 0 <= fold < folds:
        raise InputError(f"--fold must be in 0..{folds - 1} with --folds {folds}, not {fold}")


def load_or_build_cache(data, size: int, cache_path=None, progress=None, log=print, check_cases=None) -> SliceCache:
    """``data`` is a training folder or a cache file made by an earlier run. A ``cache_path``
    is reused when it was made from ``data`` as it is now, rebuilt (with a note) otherwise.
    ``check_cases(case_ids)`` runs before any slice is prepared."""
    data = Path(data)
    if data.is_file():
        cache = SliceCache.load(data)
        if cache.size != size:
            raise InputError(f"{data} holds {cache.size} px slices; this run needs {size} px "
                             f"(use --size {cache.size}, or give the data folder)")
        if check_cases:
            check_cases(cache.case_ids)
        return cache
    if cache_path is not None:
        _check_cache_path(Path(cache_path))
    sources = list_cases(data)
    if check_cases:
        check_cases([source.case_id for source in sources])
    cache = _reusable_cache(Path(cache_path), size, fingerprint(data, sources), log) if cache_path else None
    if cache is None:
        cache = build_cache(data, size, progress=progress, sources=sources)
        if cache_path is not None:
            cache.save(cache_path)
    return cache


def _check_cache_path(path: Path) -> None:
    if path.is_dir():
        raise InputError(f"--cache {path} is a folder; give a file path (e.g. {path / 'slices.npz'})")
    if not path.parent.is_dir():
        raise InputError(f"--cache {path}: the folder {path.parent} does not exist")


def _reusable_cache(path: Path, size: int, data_fingerprint: str, log) -> SliceCache | None:
    """The cache at ``path`` if it holds these data at this size; None (after a note why) to rebuild."""
    if not path.exists():
        return None
    try:
        info = SliceCache.read_info(path)
    except InputError as error:
        log(f"rebuilding --cache {path}: {_reason(error, path)}")
        return None
    if info.get("size") != size:
        raise InputError(f"--cache {path} holds {info.get('size')} px slices; this run needs {size} px: "
                         "give another --cache path")
    if info.get("fingerprint") != data_fingerprint:
        log(f"rebuilding --cache {path}: it was made from other data, or the cases or their files "
            "have changed since")
        return None
    try:
        return SliceCache.load(path)
    except InputError as error:
        log(f"rebuilding --cache {path}: {_reason(error, path)}")
        return None


def _reason(error: InputError, path: Path) -> str:
    return str(error).removeprefix(f"{path}: ")


def split_cases(case_ids, folds: int, fold: int, seed: int) -> tuple[list[str], list[str]]:
    """``(training, validation)`` patients; ``folds=1`` trains on every patient and validates on none."""
    if folds == 1:
        return sorted(case_ids), []
    check_folds(len(case_ids), folds, fold)
    groups = patient_folds(case_ids, folds, seed)
    val = groups[fold]
    return sorted(c for c in case_ids if c not in set(val)), val


def run_training(data, output, config: TrainConfig, folds: int = 5, fold: int = 0, split_seed: int = 0,
                 device: torch.device = torch.device("cpu"), cache_path=None, log=print, progress=None,
                 command: str | None = None, segmenter_from=None, resume: bool = False) -> Path:
    """Train and write a model folder. With ``segmenter_from`` (a model folder trained on the
    same split), keep that model's segmenter and train only a new classifier.

    Training state is kept in ``output/checkpoint.pt`` after every epoch; with ``resume`` a run
    that was interrupted continues from it (same options), otherwise an old one is replaced.
    The checkpoint is removed once the model is written."""
    from neuroseg import __version__
    from neuroseg.models.store import check_model_dir, save_model

    check_options(config, folds, split_seed)
    check_model_dir(output)
    if not Path(data).exists():
        raise InputError(f"Training data not found: {data}")
    cache = load_or_build_cache(data, config.size, cache_path, progress, log,
                                check_cases=lambda ids: check_folds(len(ids), folds, fold))
    train_ids, val_ids = split_cases(cache.case_ids, folds, fold, split_seed)
    base = _base_model(segmenter_from, config, train_ids) if segmenter_from is not None else None
    if segmenter_from is not None and config.joint:
        raise InputError("--segmenter-from needs --network resunet (a v1 model's segmenter)")
    checkpoint = Path(output) / CHECKPOINT
    if resume and not checkpoint.exists():
        raise InputError(f"--resume: {output} holds no checkpoint to continue from ({CHECKPOINT})")
    if not resume and checkpoint.exists():
        checkpoint.unlink()
    if base is not None:
        seg = base.metadata["architecture"]["segmenter"]
        config = replace(config, seg_features=seg["features"], seg_depth=seg["depth"])
    log(f"training on {len(train_ids)} patients, validating on {len(val_ids)} (fold {fold} of {folds}), "
        f"device {device}" + (f", segmenter kept from {segmenter_from}" if base is not None else ""))
    started = time.perf_counter()
    # with --max-minutes, the classifier's members share the budget (each a fair part of what is left)
    deadline = started + 60 * config.max_minutes if config.max_minutes is not None else None
    first_budget = minutes_left(deadline, config.cls_members)
    first = replace(config, max_minutes=first_budget)
    segmenter, classifier, history = train_networks(cache, train_ids, val_ids, first, device, log,
                                                    segmenter=base.segmenter if base is not None else None,
                                                    checkpoint=checkpoint if config.cls_members == 1 else None)
    member_histories, budgets = [], [first_budget]
    if config.cls_members > 1:
        members, member_histories, member_budgets = train_classifier_members(
            cache, train_ids, val_ids, config, device, log, segmenter, deadline)
        classifier = ClassifierEnsemble([classifier, *members])
        budgets += member_budgets
    minutes = (time.perf_counter() - started) / 60
    # an ensemble's validation is of the whole ensemble, not of its first member
    final = (validate_model(segmenter, classifier, cache, val_ids, config, device)
             if member_histories and val_ids else history[-1])
    metadata = {
        "name": MODEL_NAME,
        "neuroseg_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "architecture": config.architecture(),
        "input": {**config.preprocessing().to_metadata(), **config.preprocessing().describe()},
        "labels": {"0": "background", "1": "FLAIR abnormality (tumour)"},
        "inference": {"gate": True, "gate_threshold": 0.5, "threshold": 0.5, "min_component_ml": 0.0,
                      "flip_tta": False, "chosen_by": "defaults; see metrics.cross_validation when present"},
        "training": {
            "command": command or " ".join(sys.argv),
            "data": str(data), "data_source": cache.info.get("source"), "cases": len(cache.case_ids),
            "folds": folds, "fold": fold,
            "split_seed": split_seed, "classifier_seeds": config.classifier_seeds,
            "train_cases": train_ids, "validation_cases": val_ids,
            "config": asdict(config), "device": str(device),
            "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor(),
            "minutes": round(minutes, 2),
            **({"max_minutes_per_classifier": [round(b, 3) for b in budgets]} if deadline is not None else {}),
            "history": history,
            **({"member_histories": member_histories} if member_histories else {}),
        },
        "metrics": {"validation_model_grid": {k: v for k, v in final.items() if k.startswith("val_")}},
    }
    if base is not None:
        metadata["training"]["segmenter_from"] = {
            "model": str(segmenter_from), "sha256": base.metadata["weights"]["segmenter"]["sha256"],
            "training": {k: v for k, v in base.metadata["training"].items()
                         if k not in ("history", "member_histories")},
            "metrics": base.metadata.get("metrics", {}),
        }
        metadata["inference"] = dict(base.metadata["inference"], chosen_by=(
            "kept from the segmenter's model; measure again with `neuroseg evaluate` before relying on it: "
            + base.metadata["inference"].get("chosen_by", "")))
    if not val_ids:
        metadata["metrics"] = {"validation": "none: trained on every patient; see the model card's cross-validation"}
    written = save_model(output, segmenter, classifier, json.loads(json.dumps(metadata, default=float)))
    checkpoint.unlink(missing_ok=True)
    return written


def _base_model(path, config: TrainConfig, train_ids):
    """The model whose segmenter is kept; it must share the input and the training patients."""
    from neuroseg.errors import ModelError
    from neuroseg.models.store import load_model

    base = load_model(path)
    if base.input_size != config.size or base.context != config.context:
        raise ModelError(f"{path} takes {base.input_size}px slices with {base.context} context slices; "
                         f"this run uses {config.size}px and {config.context}")
    if sorted(base.metadata.get("training", {}).get("train_cases", [])) != sorted(train_ids):
        raise ModelError(f"{path} was trained on other patients than this split's training set; "
                         "use the same --folds, --fold and --seed")
    return base
