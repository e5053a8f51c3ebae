"""How much Dice the model's grid alone costs: each patient's label taken to the model's input grid (head
crop, resized to SIZE px, as the slices are) and back to the original grid, against itself.

    python docs/results/pilot-size160/resampling_ceiling.py ../shared/data/lgg-flair OUT.json [SIZE ...]
"""
import json
import sys

import numpy as np

from neuroseg.io.datasets import find_labelled_cases
from neuroseg.training.evaluate import dice
from neuroseg.transforms import Reorientation
from neuroseg.transforms.inplane import HEAD_MARGIN, fit_head_crop

data, output = sys.argv[1], sys.argv[2]
sizes = [int(s) for s in sys.argv[3:]] or [128, 160, 192, 256]
cases = dict(find_labelled_cases(data))
result = {"command": "python docs/results/pilot-size160/resampling_ceiling.py " + " ".join(sys.argv[1:]), "sizes": {}}
for size in sizes:
    per_case = {}
    for case_id, load in cases.items():
        case = load()
        reorientation = Reorientation.to_working(case.image)
        image = reorientation.apply_volume(case.image, copy=False)
        label = np.asarray(reorientation.apply_volume(case.label, copy=False).array) > 0
        crop = fit_head_crop(image, size, HEAD_MARGIN)  # the crop the model's slices get
        back = crop.invert(crop.apply(label.astype(np.float32))) >= 0.5
        per_case[case_id] = {"dice": round(dice(back, label), 5),
                             "volume_ml": round(float(label.sum()) * case.image.voxel_volume_ml, 3)}
    dices = np.array([c["dice"] for c in per_case.values()])
    small = np.array([c["dice"] for c in per_case.values() if c["volume_ml"] < 5])
    result["sizes"][str(size)] = {"dice_mean": round(float(dices.mean()), 4), "dice_min": round(float(dices.min()), 4),
                                  "under_5ml_mean": round(float(small.mean()), 4), "cases": per_case}
    print(size, result["sizes"][str(size)]["dice_mean"], result["sizes"][str(size)]["under_5ml_mean"], flush=True)
with open(output, "w") as f:
    json.dump(result, f, indent=1)
