"""``neuroseg pull``: one study from a PACS into a folder that ``run`` and ``batch`` read."""

from __future__ import annotations

from pathlib import Path

from neuroseg.net.spool import check_uid


def pull_study(study_uid: str, output, *, peer=None, client=None, ae_title: str = "NEUROSEG"):
    """Fetch study ``study_uid`` into ``output/STUDY/...``; returns (the study's folder, the files)."""
    from neuroseg.net import dicomweb, dimse

    study_uid = check_uid(study_uid, "--study")
    output = Path(output)
    if peer is not None:
        files = dimse.get_study(peer, study_uid, output, ae_title=ae_title)
    else:
        files = dicomweb.fetch_study(client, study_uid, output)
    return output / study_uid, files
