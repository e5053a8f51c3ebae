"""The pictures docs/images/cv-false-region-*.png: the fold model that did not see a patient, with the shipped
post-processing (red), against the label (green), on the two slices with the most false area and the slice with the
most tumour.

    python docs/results/cv5-v2-crops/false_regions_picture.py TCGA_CS_6668_20011025:2 TCGA_DU_7299_19910417:1

(CASE:FOLD; the fold models in runs/cv; writes /tmp/fp/CASE.png)
"""
import os, sys
import numpy as np, torch
from PIL import Image
from scipy import ndimage
from neuroseg.inference import Segmenter
from neuroseg.io.datasets import find_labelled_cases
torch.set_num_threads(2)
os.makedirs('/tmp/fp', exist_ok=True)
loaders = dict(find_labelled_cases('../shared/data/lgg-flair'))
for case_id, fold in [(a.split(':')[0], int(a.split(':')[1])) for a in sys.argv[1:]]:
    seg = Segmenter(f'runs/cv/fold{fold}', device='cpu', precision='bf16')
    case = loaders[case_id]()
    seg.gate, seg.gate_threshold, seg.threshold, seg.min_component_ml, seg.fill_holes, seg.flip_tta = True, 0.1, 0.4, 1.0, True, True
    res = seg.segment(case.image)
    mask = np.asarray(res.mask.array) > 0; truth = np.asarray(case.label.array) > 0
    img = np.asarray(case.image.array, dtype=np.float32)
    fp = mask & ~truth
    zs = np.argsort(-fp.sum(axis=(0, 1)))[:2].tolist() + [int(np.argmax(truth.sum(axis=(0, 1))))]
    tiles = []
    for z in zs:
        s = img[:, :, z]; s = np.clip(s / np.percentile(s, 99.5), 0, 1)
        rgb = np.stack([s] * 3, -1)
        edge = lambda m: m & ~ndimage.binary_erosion(m)
        rgb[edge(truth[:, :, z])] = [0, 1, 0]
        rgb[edge(mask[:, :, z])] = [1, 0, 0]
        tiles.append((np.rot90(rgb) * 255).astype(np.uint8))
    Image.fromarray(np.concatenate(tiles, 1)).resize((256 * 3 * 2, 256 * 2), Image.NEAREST).save(f'/tmp/fp/{case_id}.png')
    print(case_id, zs)
