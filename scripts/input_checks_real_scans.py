"""Run the input checks on every real scan in ../shared/data and say how often each was right.

    python scripts/input_checks_real_scans.py [--data ../shared/data] [-o docs/results/input-checks-real-scans.json]

Needs no model. Expected: every FLAIR passes with no warning; a non-FLAIR warned by a sequence check counts
as caught. Writes one row per scan (every finding's level and value) and the counts.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository: tests/real_scans.py

from tests.real_scans import default_data, real_scans  # noqa: E402


def main(args=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_data())
    parser.add_argument("-o", "--output", type=Path,
                        default=Path(__file__).resolve().parent.parent / "docs" / "results" /
                        "input-checks-real-scans.json")
    options = parser.parse_args(args)
    from neuroseg.checks import OK, check_input

    rows = []
    for name, sequence, load in real_scans(options.data):
        begin = time.perf_counter()
        checks = check_input(load())
        seconds = time.perf_counter() - begin
        findings = {f.check: {"level": f.level, "value": f.value_text} for f in checks.findings}
        rows.append({"scan": name, "sequence": sequence, "level": checks.level, "flagged": [f.check for f in checks.flagged],
                     "seconds": round(seconds, 3), "findings": findings})
        print(f"{name:55s} {sequence:5s} {checks.level:6s} {', '.join(rows[-1]['flagged'])}", flush=True)
    flair = [r for r in rows if r["sequence"] == "FLAIR"]
    other = [r for r in rows if r["sequence"] != "FLAIR"]
    summary = {
        "flair_scans": len(flair),
        "flair_without_warning": sum(r["level"] == OK for r in flair),
        "non_flair_scans": len(other),
        "non_flair_caught_by_image": sum(r["findings"].get("sequence.image_contrast", {}).get("level") == "warn"
                                         for r in other),
        "non_flair_caught_by_any_sequence_check": sum(any(c.startswith("sequence.") for c in r["flagged"])
                                                      for r in other),
        "per_check": _per_check(rows),
    }
    options.output.parent.mkdir(parents=True, exist_ok=True)
    options.output.write_text(as_json({"command": "python scripts/input_checks_real_scans.py",
                                       "summary": summary, "scans": rows}))
    print(json.dumps({k: v for k, v in summary.items() if k != "per_check"}))
    print(f"wrote {options.output}")
    return 0


def as_json(result: dict) -> str:
    """The summary indented, one line per scan (the file stays small and diffs well)."""
    scans = ",\n  ".join(json.dumps(row) for row in result["scans"])
    head = json.dumps({k: v for k, v in result.items() if k != "scans"}, indent=1)[:-2]
    return head + ',\n "scans": [\n  ' + scans + "\n ]\n}\n"


def _per_check(rows) -> dict:
    """For each check: on how many FLAIRs it was ok, on how many non-FLAIRs it warned."""
    names = sorted({c for r in rows for c in r["findings"]})
    out = {}
    for name in names:
        have = [r for r in rows if name in r["findings"]]
        out[name] = {"flair_ok": sum(r["findings"][name]["level"] == "ok" for r in have if r["sequence"] == "FLAIR"),
                     "flair": sum(r["sequence"] == "FLAIR" for r in have),
                     "non_flair_warned": sum(r["findings"][name]["level"] != "ok" for r in have
                                             if r["sequence"] != "FLAIR"),
                     "non_flair": sum(r["sequence"] != "FLAIR" for r in have)}
    return out


if __name__ == "__main__":
    raise SystemExit(main())
