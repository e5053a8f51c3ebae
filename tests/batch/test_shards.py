"""--shard K/N: shards cover every case once, stay put when cases are added, and merge into one summary."""

from __future__ import annotations

import json

import pytest

from neuroseg.batch import merge_shards, run_batch
from neuroseg.batch.plan import parse_shard, plan_batch
from neuroseg.errors import BatchIncompleteError, InputError
from tests.batch.helpers import comparable_summary
from tests.conftest import blob_volume
from tests.dicom_factory import new_study, write_series
from tests.inference.test_batch import write_nifti


def archive(root, files: int):
    for n in range(files):
        write_nifti(root / f"site{n % 3}" / f"scan{n:02d}.nii.gz")
    write_series(blob_volume(), root / "dicom" / "flair", study=new_study(study_uid="1.2.60"), series_uid="1.2.60.1")


def shards_of(root, out, count=3) -> dict:
    return {k: [case.key for case in plan_batch(root, out, shard=(k, count)).cases] for k in range(1, count + 1)}


def test_shards_cover_every_case_once_and_are_stable(tmp_path):
    archive(tmp_path / "in", 11)
    everything = [case.key for case in plan_batch(tmp_path / "in", tmp_path / "out").cases]
    before = shards_of(tmp_path / "in", tmp_path / "out")
    assert sorted(sum(before.values(), [])) == sorted(everything) and len(everything) == 12
    assert all(before.values()), before  # 12 cases: no shard is empty
    write_nifti(tmp_path / "in" / "site1" / "scan99.nii.gz")
    write_nifti(tmp_path / "in" / "aaa-first.nii.gz")  # sorts first: the order of the others shifts
    after = shards_of(tmp_path / "in", tmp_path / "out")
    for k in before:  # nothing moved, the two new cases went somewhere
        assert [key for key in after[k] if key in before[k]] == before[k]
    added = sorted(set(sum(after.values(), [])) - set(everything))
    assert added == ["file:aaa-first.nii.gz", "file:site1/scan99.nii.gz"]
    assert sorted(sum(after.values(), [])) == sorted(everything + added)


def test_shard_option_is_checked():
    assert parse_shard("2/8") == (2, 8) and parse_shard(None) is None
    for bad in ("0/3", "4/3", "1-3", "a/b", "3"):
        with pytest.raises(InputError, match="--shard"):
            parse_shard(bad)


def test_shards_then_merge_give_the_plain_summary(tmp_path, tiny_model):
    archive(tmp_path / "in", 5)
    out = tmp_path / "out"
    with pytest.raises(InputError, match="no shard summaries"):
        merge_shards(out)
    for k in (1, 3):
        result = run_batch(tmp_path / "in", out, model=tiny_model, device="cpu", shard=f"{k}/3", workers=0)
        assert (out / f"summary.shard-{k}-of-3.json").is_file() and result.shard == (k, 3)
    with pytest.raises(BatchIncompleteError, match="shard 2/3 not run yet"):
        merge_shards(out)
    assert not (out / "summary.csv").exists()
    run_batch(tmp_path / "in", out, model=tiny_model, device="cpu", shard="2/3", workers=0)
    merged = merge_shards(out)
    assert merged.count("done") == 6 and merged.failed == 0
    plain = run_batch(tmp_path / "in", tmp_path / "plain", model=tiny_model, device="cpu")
    assert [row["case"] for row in merged.rows] == [row["case"] for row in plain.rows]  # the plain order
    assert comparable_summary(out) == comparable_summary(tmp_path / "plain")
    # a rerun without --shard writes the same one summary, every case done earlier
    rerun = run_batch(tmp_path / "in", out, model=tiny_model, device="cpu")
    assert rerun.count("done earlier") == 6
    assert len(json.loads((out / "summary.json").read_text())["cases"]) == 6


def test_cli_merge(tmp_path, tiny_model):
    from typer.testing import CliRunner

    from neuroseg.cli.main import app

    archive(tmp_path / "in", 2)
    runner = CliRunner()
    common = ["-o", str(tmp_path / "out"), "--model", str(tiny_model), "--device", "cpu"]
    first = runner.invoke(app, ["batch", str(tmp_path / "in"), *common, "--shard", "1/2"])
    assert first.exit_code == 0, first.output
    assert "(shard 1/2)" in first.output
    early = runner.invoke(app, ["batch", "--merge", str(tmp_path / "out")])
    assert early.exit_code == 6 and "shard 2/2 not run yet" in early.output
    assert runner.invoke(app, ["batch", str(tmp_path / "in"), *common, "--shard", "2/2"]).exit_code == 0
    merged = runner.invoke(app, ["batch", "--merge", str(tmp_path / "out")])
    assert merged.exit_code == 0, merged.output
    assert "3 cases: 3 done" in merged.output and (tmp_path / "out" / "summary.csv").is_file()
    both = runner.invoke(app, ["batch", str(tmp_path / "in"), "--merge", str(tmp_path / "out")])
    assert both.exit_code == 2 and "--merge OUTDIR takes no DIR" in both.output
