"""Time ``neuroseg listen`` end to end: Orthanc forwards the sample series, the SEG comes back to Orthanc.

The sample FLAIR (sample_data/, 208x256x26) is written as a DICOM series (tests/dicom_factory), stored
in a real Orthanc started on free ports, and forwarded to a ``neuroseg listen`` process (shipped model,
already started and warm). Printed: seconds from Orthanc's forward call to the SEG being found in
Orthanc, and the part that is the listener's --stable-seconds wait.

    python benchmarks/listen_roundtrip.py [--stable-seconds 1] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stable-seconds", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from neuroseg.io.nifti import load_nifti
    from tests.dicom_factory import new_study, write_series
    from tests.net.orthanc import free_port, start_orthanc

    work = Path(tempfile.mkdtemp(prefix="listen-bench-"))
    port = free_port()
    orthanc = start_orthanc(work / "orthanc", {"NEUROSEG": {"AET": "NEUROSEG", "Host": "127.0.0.1", "Port": port}})
    volume = load_nifti(REPO / "sample_data" / "TCGA-FG-6692_flair.nii.gz")
    command = [sys.executable, "-m", "neuroseg", "listen", "--spool", str(work / "spool"), "--port", str(port),
               "--send-to", orthanc.peer, "--stable-seconds", str(args.stable_seconds), "--device", "cpu"]
    listener = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, cwd=REPO,
                                env=dict(os.environ, PYTHONPATH=str(REPO)))
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(listener.stderr), daemon=True).start()
    try:
        while not any("listening on" in line for line in lines):
            if listener.poll() is not None:
                raise SystemExit("".join(lines))
            time.sleep(0.05)
        times = []
        for n in range(args.repeats):
            study = new_study()
            files = write_series(volume, work / f"series{n}", study=study, description="AX FLAIR")
            orthanc.upload(files)
            begin = time.perf_counter()
            orthanc.rest("POST", "/modalities/NEUROSEG/store", data=orthanc.study_id(study["study_uid"]))
            while not orthanc.instances(study["study_uid"], "SEG"):
                time.sleep(0.05)
            times.append(time.perf_counter() - begin)
            print(f"study {n + 1}: forwarded ({len(files)} instances) -> SEG stored in Orthanc: {times[-1]:.2f} s "
                  f"(of which {args.stable_seconds:g} s is --stable-seconds)", flush=True)
        print(f"median {sorted(times)[len(times) // 2]:.2f} s over {len(times)} studies")
    finally:
        listener.terminate()
        listener.wait(30)
        orthanc.stop()


if __name__ == "__main__":
    main()
