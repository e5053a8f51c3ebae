"""Where the shipped classifier recipe errs on folds 1-4: missed tumour slices against false calls,
the tumour area of the misses, and the patients the false calls come from (kept logits, seeds 4-7).

    python scripts/classifier_errors.py   # needs .cache/lgg192.npz (the masks and case offsets)
"""

import json
import sys
from collections import Counter

import numpy as np

sys.path.insert(0, "scripts")
from cv_scores import _logits  # noqa: E402

SEEDS = (4, 5, 6, 7)


def main() -> None:
    cache = np.load(".cache/lgg192.npz")
    ids, offsets, masks = [str(c) for c in cache["case_ids"]], cache["offsets"], cache["masks"]
    runs = [json.load(open(f"docs/results/classifier-cv-logits-seed{s}.json"))["folds"] for s in SEEDS]
    missed_area, found_area, at_run_end = [], [], []
    false_calls, misses = Counter(), Counter()
    for fold in "1234":
        ensemble = np.mean([_logits(run[fold], True) for run in runs], axis=0)  # flip-averaged, as shipped
        labels = np.asarray(runs[0][fold]["labels"], bool)
        start = 0
        for case in runs[0][fold]["cases"]:  # rows are case by case, each in slice order
            index = ids.index(case)
            n = int(offsets[index + 1] - offsets[index])
            area = masks[offsets[index]:offsets[index + 1]].reshape(n, -1).sum(1)
            truth, called = labels[start:start + n], ensemble[start:start + n] > 0
            start += n
            for k in np.flatnonzero(truth & ~called):
                missed_area.append(area[k])
                at_run_end.append(k in (0, n - 1) or not truth[k - 1] or not truth[k + 1])
                misses[case] += 1
            found_area += list(area[truth & called])
            false_calls[case] += int((~truth & called).sum())
    print(f"missed tumour slices {len(missed_area)}; tumour area quartiles (192 grid px) "
          f"{np.percentile(missed_area, [25, 50, 75]).round().tolist()}; at the end of a run of tumour slices "
          f"{np.mean(at_run_end):.2f}")
    print(f"found tumour slices: area quartiles {np.percentile(found_area, [25, 50, 75]).round().tolist()}")
    print(f"false calls {sum(false_calls.values())}; by patient {false_calls.most_common(6)}")
    print(f"misses by patient {misses.most_common(6)}")


if __name__ == "__main__":
    main()
