"""``neuroseg`` command line. Heavy modules are imported inside commands so --help is instant."""

from __future__ import annotations

import functools
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(
    name="neuroseg", add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
    help="Find and outline brain tumours in FLAIR MRI (NIfTI or DICOM).",
)


def _version(value: bool):
    if value:
        from neuroseg._version import __version__

        typer.echo(f"neuroseg {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Show the version and exit.")):
    """Find and outline brain tumours in FLAIR MRI (NIfTI or DICOM)."""


def friendly_errors(command):
    """One line and a documented exit code for every error a user can cause; no traceback.

    Exit codes: 1 other or internal error, 2 input, 3 output, 4 model, 5 geometry check,
    6 batch incomplete, 130 interrupted (see neuroseg/errors.py). Set NEUROSEG_DEBUG=1 to
    see the traceback of an unexpected error instead.
    """

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        import os

        from neuroseg.errors import NeurosegError

        try:
            return command(*args, **kwargs)
        except typer.Exit:  # typer.Exit is a RuntimeError: a command's own exit code, passed on
            raise
        except NeurosegError as error:
            _fail(str(error), error.exit_code)
        except KeyboardInterrupt:
            _fail("interrupted", 130)
        except MemoryError:
            _fail("not enough memory for this input", 1)
        except OSError as error:
            _fail(f"{error.strerror or error}: {error.filename or ''}".rstrip(": "), 3)
        except ValueError as error:
            _fail(str(error).strip() or type(error).__name__, 1)
        except Exception as error:  # a RuntimeError (shape bug, CUDA failure) is ours, not the user's
            if type(error).__name__ == "OutOfMemoryError":  # torch.cuda.OutOfMemoryError, without importing torch
                _fail("out of GPU memory for this input: try --device cpu", 1)
            if os.environ.get("NEUROSEG_DEBUG"):
                raise
            _fail(f"internal error, please report it: {type(error).__name__}: {error}", 1)

    return wrapper


def _fail(message: str, code: int):
    """Print ``neuroseg: error: MESSAGE`` as one line on stderr and exit with ``code``."""
    from neuroseg.errors import first_line

    text = first_line(message, "unknown error")
    if text != str(message).strip():  # more lines follow
        text += " ..."
    typer.echo(f"neuroseg: error: {text}", err=True)
    raise typer.Exit(code)


def _console():
    from neuroseg.cli.console import make_console

    return make_console()


@app.command()
@friendly_errors
def run(
    input: Path = typer.Argument(..., metavar="INPUT",
                                 help="A NIfTI file (.nii, .nii.gz) or a folder holding a DICOM series."),
    output: Path = typer.Option(..., "-o", "--output", help="Folder for the mask, report and picture."),
    model: Optional[Path] = typer.Option(None, "--model", help="A model folder (default: the shipped model)."),
    device: str = typer.Option("auto", "--device", help="auto (CUDA when available), cpu or cuda."),
    probabilities: bool = typer.Option(False, "--probabilities", help="Also write the probability map."),
    series: Optional[str] = typer.Option(None, "--series", help="SeriesInstanceUID to use from a DICOM folder."),
    output_format: str = typer.Option("nifti", "--format", help="nifti, dicom-seg or both (DICOM input only)."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing outputs."),
    force_input: bool = typer.Option(False, "--force-input", help="Run even when an input check refuses the "
                                                                "input (the report marks the run as forced)."),
    viewer: bool = typer.Option(True, "--viewer/--no-viewer", help="Write viewer.html (scan and mask, offline)."),
    secondary_capture: bool = typer.Option(False, "--secondary-capture", help="Also write sc.dcm: the QC picture "
                                           "as a DICOM Secondary Capture in the source study (DICOM input only)."),
    verbose: bool = typer.Option(False, "--verbose", help="Print every input check's finding, not only those that "
                                                          "warned (all are in report.json)."),
    mesh: bool = typer.Option(False, "--mesh", help="Also write the tumour surface: tumour.stl and tumour.obj "
                              "(LPS mm, for 3D Slicer and printing), tumour.gii (RAS mm)."),
):
    """Segment one scan and write mask, report, QC picture and viewer page into OUTPUT."""
    from neuroseg.cli.console import segment_into

    segment_into(input, output, model=model, device=device, probabilities=probabilities, series=series,
                 output_format=output_format, force=force, force_input=force_input, viewer=viewer,
                 secondary_capture=secondary_capture, verbose=verbose, mesh=mesh)


@app.command()
@friendly_errors
def train(
    context: typer.Context,
    data: Path = typer.Argument(..., metavar="DATA", help="Decathlon folder, kaggle_3m folder (or the folder "
                                                        "holding it), or a cache file from an earlier run."),
    output: Path = typer.Option(..., "-o", "--output", help="Model folder to write."),
    network: str = typer.Option("strided", help="strided (v2: one network, mask and slice head) or resunet "
                                                "(v1: ResUNet beside a ResNet classifier)."),
    epochs: int = typer.Option(60, help="Training epochs (an upper bound with --max-minutes)."),
    max_minutes: Optional[float] = typer.Option(None, help="Fit the schedule into this many minutes."),
    batch_size: int = typer.Option(32, help="Slices per batch."),
    size: int = typer.Option(192, help="In-plane size of the model's input."),
    features: int = typer.Option(16, help="Width of the first ResUNet block."),
    classifier_features: Optional[int] = typer.Option(None, help="Width of the classifier (default: --features)."),
    classifier_pool: str = typer.Option("avg", help="Classifier pooling: avg, or avgmax (keeps small lesions)."),
    classifier_stem_max_pool: bool = typer.Option(
        True, "--classifier-stem-max-pool/--no-classifier-stem-max-pool",
        help="Max pooling after the classifier's first conv; without it, finer maps at ~1.7x the time."),
    classifier_members: int = typer.Option(
        1, min=1, help="Classifiers trained from seeds seed, seed+1, ...; their mean logit decides."),
    segmenter_from: Optional[Path] = typer.Option(
        None, help="Keep this model folder's segmenter (same split) and train only the classifier."),
    learning_rate: float = typer.Option(2e-3, help="Peak learning rate (cosine schedule)."),
    loss: str = typer.Option("dice-ce-image", help="dice-ce (batch Dice + CE) or dice-ce-image (also each "
                                                   "tumour slice's own Dice, so small tumours count)."),
    ema: float = typer.Option(0.99, help="Decay of the weights' moving average, which is saved (0: off)."),
    small_boost: float = typer.Option(1.0, help="Extra sampling weight of small-tumour and end-of-tumour slices."),
    threads: Optional[int] = typer.Option(None, help="CPU threads for training (default: torch's choice)."),
    crop: int = typer.Option(128, help="Train on crops of this many px of the augmented slices (0: whole "
                                       "slices); inference always takes whole slices."),
    tumour_crops: float = typer.Option(1 / 3, help="Share of crops centred on a tumour pixel."),
    context_slices: int = typer.Option(1, min=0, help="Neighbouring slices on each side, fed to the network as "
                                                      "channels beside the slice (2.5D)."),
    precision: str = typer.Option("auto", help="auto (bf16 autocast where the CPU or GPU has it natively), "
                                               "bf16 or fp32."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run from -o's checkpoint."),
    folds: int = typer.Option(5, help="Patient-level folds; one is held out for validation (1: train on all)."),
    fold: int = typer.Option(0, help="Which fold is the validation set."),
    seed: int = typer.Option(0, help="Seed of the patient split and of training."),
    train_seed: Optional[int] = typer.Option(
        None, help="Another training seed on the same split (default: --seed); ensemble members count up from it."),
    cache: Optional[Path] = typer.Option(None, help="Where to keep preprocessed slices for reuse."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing model folder."),
):
    """Train the slice classifier and the ResUNet segmenter; write a model folder."""
    from neuroseg.errors import Interrupted, OutputError
    from neuroseg.inference import resolve_device
    from neuroseg.training.run import run_training

    if (output / "metadata.json").exists() and not force and not resume:
        raise OutputError(f"Model folder exists: {output} (use --force to overwrite)")
    console = _console()
    config = _train_config(context.params)
    try:  # run_training checks the options, -o and DATA before any slice is prepared
        with _epoch_progress(console) as log:
            run_training(data, output, config, folds=folds, fold=fold, split_seed=seed,
                         device=resolve_device(device), cache_path=cache, log=log,
                         progress=lambda items: _track(items, "Preparing slices"),
                         command=_command_line(context), segmenter_from=segmenter_from, resume=resume)
    except KeyboardInterrupt:
        raise Interrupted("interrupted: no model was written") from None
    console.print(f"wrote {output}")


# train's options spelled for a user; every other option named like a TrainConfig field goes there as it is
_CONFIG_NAMES = {"features": "seg_features", "classifier_features": "cls_features", "classifier_pool": "cls_pool",
                 "classifier_stem_max_pool": "cls_stem_max_pool", "classifier_members": "cls_members",
                 "train_seed": "seed", "context_slices": "context"}


def _train_config(options: dict):
    """The TrainConfig of train's options: renamed by _CONFIG_NAMES, the rest matched by name."""
    from dataclasses import fields

    from neuroseg.training.train import TrainConfig

    names = {f.name for f in fields(TrainConfig)}
    values = {name: value for name, value in options.items() if name in names}
    values.update({field: options[option] for option, field in _CONFIG_NAMES.items() if options[option] is not None})
    values.setdefault("cls_features", options["features"])  # --classifier-features defaults to --features
    return TrainConfig(**values)


@contextmanager
def _epoch_progress(console):
    """A progress bar over epochs with the latest losses; every record is also printed as a line."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} epochs"),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("training", total=None)

        def log(record):
            progress.console.print(_compact(record), highlight=False, soft_wrap=True)  # one line each, for logs
            if isinstance(record, dict) and "epoch" in record:
                progress.update(task, completed=record["epoch"], total=record["of"],
                                description=f"seg {record['seg_loss']:.3f} cls {record['cls_loss']:.3f}")

        yield log


def _command_line(context: typer.Context) -> str:
    """The running command with every option spelled out, for the model's metadata."""
    parts = [context.command_path]
    params = {p.name: p for p in context.command.params}
    for name, value in context.params.items():
        if name in ("data", "input"):
            parts.insert(1, str(value))
        elif isinstance(value, bool):
            # an on/off flag's off form (--no-x) must be recorded too: it may not be the default
            flags = params[name].opts if value else params[name].secondary_opts
            parts.append(max(flags, key=len) if flags else "")
        elif value is not None:
            parts.append(f"--{name.replace('_', '-')} {value}")
    return " ".join(p for p in parts if p)


def _compact(record) -> str:
    if not isinstance(record, dict):
        return str(record)
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items())


def _track(items, description):
    from rich.progress import track

    return track(items, description=description, transient=True, console=_console())


@app.command()
@friendly_errors
def evaluate(
    data: Path = typer.Argument(..., metavar="DATA", help="Decathlon or kaggle_3m folder with labels."),
    model: Optional[Path] = typer.Option(None, "--model", help="Model folder (default: the shipped model)."),
    cases: str = typer.Option("validation", help="validation (from the model's metadata), all, or a comma list."),
    folds: int = typer.Option(0, help="Cross-validate: evaluate fold models in --models-dir (training missing ones)."),
    models_dir: Path = typer.Option(Path("cv-models"), help="Folder of fold models fold0..fold<k-1> for --folds."),
    epochs: int = typer.Option(60, help="Epochs when --folds has to train a fold model."),
    tta: bool = typer.Option(True, "--tta/--no-tta", help="Also measure left-right flip test-time augmentation."),
    output: Optional[Path] = typer.Option(None, "-o", "--output",
                                          help="JSON file for all results (default: evaluation-<date-time>.json)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing --output file."),
    variants: bool = typer.Option(False, "--variants", help="Print every post-processing variant, not just the "
                                                           "model's own."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    precision: Optional[str] = typer.Option(None, "--precision", help="auto (bf16 where the device has it "
                                            "natively), bf16 or fp32 (default: what the model's metadata says)."),
):
    """Per-patient 3D Dice and slice-level detection of a model (or of k fold models) over labelled cases."""
    import time

    from neuroseg.export.files import prepare_output_dir
    from neuroseg.training.evaluate import cross_validate, evaluate_model, format_summary, write_json

    output = output or Path(time.strftime("evaluation-%Y%m%d-%H%M%S.json"))
    prepare_output_dir(output.parent, [output.name], force)  # refuse before the work, not after
    console = _console()
    progress = lambda items: _track(items, "Evaluating")
    if folds:
        results = cross_validate(data, models_dir, folds, device, _fold_trainer(data, folds, epochs, device, console),
                                 progress=progress, flip_tta=tta, precision=precision)
    else:
        results = evaluate_model(data, model, cases, device, flip_tta=tta, progress=progress, precision=precision)
    console.print(format_summary(results, variants), highlight=False, soft_wrap=True)
    for warning in results.get("warnings", []):
        console.print(f"[bold yellow]warning:[/] {warning}", soft_wrap=True)
    write_json(output, results)
    console.print(f"wrote {output}", soft_wrap=True)


def _fold_trainer(data, folds, epochs, device, console):
    def train_fold(fold, folder):
        from neuroseg.inference import resolve_device
        from neuroseg.training.run import run_training
        from neuroseg.training.train import TrainConfig

        run_training(data, folder, TrainConfig(epochs=epochs), folds=folds, fold=fold,
                     device=resolve_device(device), log=lambda r: console.print(_compact(r), highlight=False),
                     command=f"neuroseg train {data} -o {folder} --folds {folds} --fold {fold} --epochs {epochs}")

    return train_fold


from neuroseg.cli import study as _study; _study.register(app, friendly_errors)  # noqa: E402,E702
from neuroseg.cli import net as _net; _net.register(app, friendly_errors)  # noqa: E402,E702
from neuroseg.cli import compare as _compare; _compare.register(app, friendly_errors)  # noqa: E402,E702
from neuroseg.cli import mesh as _mesh; _mesh.register(app, friendly_errors)  # noqa: E402,E702


def main(args=None):
    """Entry point; tests call it with a list of arguments."""
    try:
        app(args=args, standalone_mode=True)
    except SystemExit as exit_:
        if args is None:
            raise
        return exit_.code
    return 0
