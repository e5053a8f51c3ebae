"""The segmentation engine: load once, then segment volumes on the input's exact grid."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import torch

from neuroseg.errors import GeometryError, InputError
from neuroseg.inference.postprocess import fill_holes, remove_small_components
from neuroseg.models.graph import load_inference_model, prepare_for_inference
from neuroseg.models.precision import PRECISIONS, autocast, uses_bf16
from neuroseg.models.store import Model, read_metadata
from neuroseg.threads import beside
from neuroseg.transforms import HeadCrop, Reorientation
from neuroseg.transforms.orientation import mirror_left_right
from neuroseg.volume import Volume

BATCH_SIZE = 16
CHUNK_SLICES = 32  # slices brought back to the full grid at once


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda was asked for, but no CUDA GPU is available")
    if device not in ("cpu", "cuda"):
        raise InputError(f"Unknown device {device!r}: expected auto, cpu or cuda")
    return torch.device(device)


@dataclass
class SlicePrediction:
    """Model outputs on the working grid (axial slices, working orientation)."""

    reorientation: Reorientation
    crop: HeadCrop
    classifier: np.ndarray  # (N,) tumour probability per working slice
    probabilities: torch.Tensor  # (N, size, size) float32, zero on slices the gate skipped
    gated: np.ndarray  # (N,) bool, slices the segmenter ran on


@dataclass(frozen=True)
class ModelInfo:
    """The model and settings that made a result, as its report names them."""

    name: str | None
    version: str | None
    created: str | None
    path: str
    weights_sha256: dict
    settings: dict
    device: str

    @classmethod
    def of(cls, segmenter: "Segmenter") -> "ModelInfo":
        metadata = segmenter.model.metadata
        settings = {"gate": segmenter.gate, "gate_threshold": segmenter.gate_threshold,
                    "threshold": segmenter.threshold, "min_component_ml": segmenter.min_component_ml,
                    "flip_tta": segmenter.flip_tta, "classifier_flip_tta": segmenter.classifier_flip_tta,
                    "fill_holes": segmenter.fill_holes, "precision": "bf16" if segmenter.bf16 else "fp32"}
        return cls(name=metadata.get("name"), version=metadata.get("neuroseg_version"),
                   created=metadata.get("created"), path=str(segmenter.model.path),
                   weights_sha256={k: v["sha256"] for k, v in metadata["weights"].items()},
                   settings=settings, device=str(segmenter.device))


@dataclass
class SegmentationResult:
    """One segmentation; its report (:attr:`report`) is built from these fields, in one place.

    Steps after segmenting add to ``timings`` (e.g. the batch's read time), ``source`` (what identifies
    the input beyond its Volume, e.g. a file's stamp) and ``notes`` (warnings), never to the report.
    """

    image: Volume
    mask: Volume
    probabilities: Volume | None
    slice_axis: int
    slice_probabilities: np.ndarray  # per source slice along slice_axis
    timings: dict = field(default_factory=dict)
    input_checks: dict = field(default_factory=dict)  # report.json's input_checks section (neuroseg.checks)
    model: ModelInfo | None = None
    source: dict = field(default_factory=dict)  # extra keys of the report's "input" section
    notes: list = field(default_factory=list)  # warnings beyond the reader's

    @property
    def report(self) -> dict:
        """The report.json content (its ``files`` list empty: the writer names the files)."""
        from neuroseg.inference.report import build_report

        return build_report(self)

    # The report is built each time it is read (QC title, viewer page, console, report.json): what only
    # the mask decides is computed once per result (dataclasses.replace with another mask starts afresh).
    @cached_property
    def per_slice_voxels(self) -> np.ndarray:
        """Tumour voxels on each source slice along ``slice_axis``."""
        other = tuple(a for a in range(3) if a != self.slice_axis)
        return self.mask.array.sum(axis=other, dtype=np.int64)

    @cached_property
    def bounding_box_mm(self) -> dict | None:
        """The report's bounding box of the mask (see :func:`neuroseg.inference.report.bounding_box_mm`)."""
        from neuroseg.inference.report import bounding_box_mm

        return bounding_box_mm(self.mask)

    @cached_property
    def lesions(self):
        """The report's lesion measurements (:func:`neuroseg.measure.measure_lesions`)."""
        from neuroseg.measure import measure_lesions

        return measure_lesions(self.mask)

    @property
    def tumour_slices(self) -> list[int]:
        return [int(k) for k in np.flatnonzero(self.per_slice_voxels)]

    @property
    def tumour_voxels(self) -> int:
        return int(self.per_slice_voxels.sum())

    @property
    def volume_ml(self) -> float:
        return self.tumour_voxels * self.mask.voxel_volume_ml


class Segmenter:
    """Holds a loaded model; ``segment`` runs the whole pipeline on one volume."""

    def __init__(self, model: Model | str | None = None, device: str = "auto",
                 keep_probabilities: bool = False, gate: bool | None = None, flip_tta: bool | None = None,
                 precision: str | None = None):
        self.device = resolve_device(device)
        if isinstance(model, Model):
            self.model = model
            if not model.traced:
                model.segmenter = prepare_for_inference(model.segmenter).to(self.device)
                if model.classifier is not None:
                    model.classifier = prepare_for_inference(model.classifier).to(self.device)
            settings = self.model.metadata.get("inference", {})
        else:
            path, metadata = read_metadata(model)
            settings = metadata.get("inference", {})
            self.model = load_inference_model(path, metadata, self.device,
                                              inference_precision(settings, self.device, precision))
        self.preprocessing = self.model.preprocessing
        self.shape = self.model.shape
        self.gate = settings.get("gate", True) if gate is None else gate
        self.gate_threshold = float(settings.get("gate_threshold", 0.5))
        self.threshold = float(settings.get("threshold", 0.5))
        self.min_component_ml = float(settings.get("min_component_ml", 0.0))
        self.fill_holes = bool(settings.get("fill_holes", False))
        self.flip_tta = settings.get("flip_tta", False) if flip_tta is None else flip_tta
        self.classifier_flip_tta = bool(settings.get("classifier_flip_tta", False))
        self.keep_probabilities = keep_probabilities
        self.precision = inference_precision(settings, self.device, precision)
        self.bf16 = uses_bf16(self.device, self.precision)

    def segment(self, source, series_uid: str | None = None, exclude=(), force_input: bool = False
                ) -> SegmentationResult:
        """Segment a Volume, a NIfTI file or a DICOM folder (``exclude``: folders in it not to search).

        The input checks run beside the preprocessing, before the network: a ``refuse`` raises
        InputRefused (exit 2) unless ``force_input``.
        """
        from neuroseg.checks import check_input
        from neuroseg.io import load_volume
        from neuroseg.io.validate import check_image

        timings = {}
        start = time.perf_counter()
        if isinstance(source, Volume):
            check_image(source)  # a reader checked a file's volume already
            volume = source
        else:
            volume = load_volume(source, series_uid=series_uid, exclude=exclude)
        timings["load"] = time.perf_counter() - start
        # The checks read the input alone: they run beside the preprocessing (one core each), and are
        # waited for before the network, which takes every core and must not run on a refused input.
        checking = beside(_timed, check_input, volume, force=force_input)
        try:
            prepared = self._prepare_timed(volume, timings)
        except Exception:
            checking.result()[0].raise_if_refused()  # a refused input fails for that reason, said plainly
            raise
        checks, timings["input_checks"] = checking.result()
        checks.raise_if_refused()
        prediction = self._predict_prepared(prepared, timings)
        start = time.perf_counter()
        mask, probabilities = self._to_input_grid(volume, prediction)
        timings["postprocess"] = time.perf_counter() - start
        reorientation = prediction.reorientation
        per_slice = reorientation.to_source_order(prediction.classifier).astype(np.float32)
        return SegmentationResult(volume, mask, probabilities, reorientation.slice_axis, per_slice, timings,
                                  input_checks=checks.as_report(), model=ModelInfo.of(self))

    def predict(self, volume: Volume, timings: dict | None = None) -> SlicePrediction:
        timings = {} if timings is None else timings
        return self._predict_prepared(self._prepare_timed(volume, timings), timings)

    @torch.inference_mode()
    def _prepare_timed(self, volume: Volume, timings: dict):
        start = time.perf_counter()
        prepared = self._prepare(volume)
        timings["preprocess"] = time.perf_counter() - start
        return prepared

    @torch.inference_mode()
    def _predict_prepared(self, prepared, timings: dict) -> SlicePrediction:
        reorientation, crop, slices = prepared
        classifier, probabilities, gated = self._predict(slices, timings)
        return SlicePrediction(reorientation, crop, classifier, probabilities, gated)

    def _predict(self, slices: torch.Tensor, timings: dict):
        """Each batch: the shape classifies every slice (averaged with the left-right mirror when
        asked), then outlines the slices the gate lets through (averaged with the mirror too under
        flip TTA). Whichever the model's shape, the segmenter runs only where the gate opens. A slice
        and its mirror go through the network in one batch: fewer, larger calls."""
        shape = self.shape
        average_slices = self.flip_tta or self.classifier_flip_tta
        slice_parts, keep_parts, mask_parts = [], [], []
        seconds = {"classifier": 0.0, "segmenter": 0.0}
        for batch in self._batches(slices, np.arange(slices.shape[0])):
            n = batch.shape[0]
            start = time.perf_counter()
            with self._autocast():
                if average_slices:
                    batch = _with_mirror(batch)
                logits, state = shape.classify(batch)
                if average_slices:
                    logits = _flip_average(logits[:n], logits[n:])
                keep = (torch.sigmoid(logits) >= self.gate_threshold if self.gate
                        else torch.ones_like(logits, dtype=torch.bool))
                seconds["classifier"] += time.perf_counter() - start
                start = time.perf_counter()
                probabilities = torch.zeros((n, *batch.shape[2:]), device=batch.device)  # none where the gate shuts
                if keep.any():
                    mirrored = keep if self.flip_tta else torch.zeros_like(keep)
                    mask_logits = shape.segment(batch, state, torch.cat([keep, mirrored]) if average_slices else keep)
                    if self.flip_tta:
                        k = int(keep.sum())
                        mask_logits = (mask_logits[:k] + mirror_left_right(mask_logits[k:])) / 2
                    probabilities[keep] = torch.sigmoid(mask_logits)
                seconds["segmenter"] += time.perf_counter() - start
            slice_parts.append(logits)
            keep_parts.append(keep)
            mask_parts.append(probabilities)
        timings.update(seconds)
        classifier = torch.sigmoid(torch.cat(slice_parts)).cpu().numpy()
        return classifier, torch.cat(mask_parts).cpu(), torch.cat(keep_parts).cpu().numpy()

    @torch.inference_mode()
    def classifier_probabilities(self, volume: Volume) -> tuple[np.ndarray, np.ndarray]:
        """Tumour probability of each source slice, without and with left-right flip averaging
        (one preprocessing, one classifier pass per orientation)."""
        reorientation, _, slices = self._prepare(volume)
        plain, mirrored = self._slice_logits(slices), self._slice_logits(mirror_left_right(slices))
        return tuple(reorientation.to_source_order(torch.sigmoid(logits).cpu().numpy())
                     for logits in (plain, _flip_average(plain, mirrored)))

    def _prepare(self, volume: Volume):
        reorientation, crop, slices = self.preprocessing.prepare(volume)
        return reorientation, crop, slices.to(self.device)

    def _slice_logits(self, slices: torch.Tensor) -> torch.Tensor:
        parts = []
        for batch in self._batches(slices, np.arange(slices.shape[0])):
            with self._autocast():
                parts.append(self.shape.classify(batch)[0])
        return torch.cat(parts)

    def _batches(self, slices: torch.Tensor, indices: np.ndarray):
        """2.5D network inputs for ``indices``, ``BATCH_SIZE`` slices at a time, channels-last."""
        for start in range(0, len(indices), BATCH_SIZE):
            batch = self.preprocessing.stack(slices, indices[start:start + BATCH_SIZE])
            yield batch.contiguous(memory_format=torch.channels_last)

    def _autocast(self):
        if self.model.traced:  # the graph's casts were traced with it
            return contextlib.nullcontext()
        return autocast(self.device, self.precision)

    def _to_input_grid(self, volume: Volume, prediction: SlicePrediction):
        """Undo crop/resize, threshold to uint8, clean up, undo reorientation; check the grid."""
        working_probabilities = None
        if self.keep_probabilities:
            working_probabilities = prediction.crop.invert(prediction.probabilities)
        mask_volume = Volume(self.mask_on_input_grid(volume, prediction, working_probabilities),
                             volume.affine.copy(), volume.meta)
        check_same_grid(volume, mask_volume)
        probabilities = None
        if self.keep_probabilities:
            probabilities = Volume(prediction.reorientation.invert(working_probabilities), volume.affine.copy(),
                                   volume.meta)
            check_same_grid(volume, probabilities)
        return mask_volume, probabilities

    def mask_on_input_grid(self, volume: Volume, prediction: SlicePrediction, working_probabilities=None,
                           slice_keep=None, min_component_ml: float | None = None,
                           threshold: float | None = None, holes_filled: bool | None = None) -> np.ndarray:
        """The uint8 mask on the input's array grid.

        Probabilities are brought back to the full grid a chunk of slices at a time, so a large
        volume never holds a full-size float copy. ``slice_keep`` (working slices, bool) zeroes
        slices, as the classifier gate does; evaluation uses it to compare gated and ungated masks.
        """
        crop = prediction.crop
        threshold = self.threshold if threshold is None else threshold
        n = prediction.probabilities.shape[0]
        mask = np.zeros((*crop.source_inplane, n), dtype=np.uint8)
        for start in range(0, n, CHUNK_SLICES):
            part = slice(start, min(start + CHUNK_SLICES, n))
            if working_probabilities is None:
                if not prediction.probabilities[part].any():
                    continue
                chunk = crop.invert(prediction.probabilities[part])
            else:
                chunk = working_probabilities[:, :, part]
            mask[:, :, part] = chunk >= threshold
        if slice_keep is not None:
            mask[:, :, ~np.asarray(slice_keep, dtype=bool)] = 0
        min_ml = self.min_component_ml if min_component_ml is None else min_component_ml
        mask = remove_small_components(mask, int(round(min_ml / max(volume.voxel_volume_ml, 1e-9))))
        if self.fill_holes if holes_filled is None else holes_filled:
            mask = fill_holes(mask)
        return prediction.reorientation.invert(mask)


def inference_precision(settings: dict, device: torch.device, asked: str | None = None) -> str:
    """The precision asked for, else the model's ``inference.precision``. A model that names none
    keeps what inference always did: bf16 on a GPU, fp32 on a CPU (bf16 there only once a model's
    cross-validation showed it gives the same Dice)."""
    if asked is not None:
        if asked not in PRECISIONS:
            raise InputError(f"--precision must be one of {', '.join(PRECISIONS)}, not {asked!r}")
        return asked
    return settings.get("precision", "auto" if device.type == "cuda" else "fp32")


def _timed(function, *args, **kwargs):
    """``(function(*args, **kwargs), the seconds it took)``."""
    start = time.perf_counter()
    return function(*args, **kwargs), time.perf_counter() - start


def _with_mirror(batch: torch.Tensor) -> torch.Tensor:
    """``batch`` followed by its left-right mirror, channels-last as the networks take it."""
    return torch.cat([batch, mirror_left_right(batch)]).contiguous(memory_format=torch.channels_last)


def _flip_average(logits: torch.Tensor, mirrored: torch.Tensor) -> torch.Tensor:
    """Mean logit of a slice and its left-right mirror, as scripts/cv_classifier.py measured it."""
    return (logits + mirrored) / 2


def check_same_grid(source: Volume, output: Volume) -> None:
    """Raise unless ``output`` lies on exactly the source's grid."""
    if output.shape != source.shape or not np.array_equal(output.affine, source.affine):
        raise GeometryError(
            f"Output grid {output.shape} / {output.affine.tolist()} differs from the input's "
            f"{source.shape} / {source.affine.tolist()}"
        )
