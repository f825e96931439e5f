"""Validation-fold Dice (n = 34) of finished runs, predicted without and with flip TTA (held-out untouched)."""
import sys, json, tempfile, dataclasses
from segcore.peer import peer_split, score_folder
from segcore.infer import Predictor, read_channels
from segcore.io import write_mask_like
split = peer_split('../shared/data/hippocampus')
val = dataclasses.replace(split, heldout=split.val)
for run in sys.argv[1:]:
    row = {'run': run}
    for tta in ('none', 'flips'):
        pred, d = Predictor(run, tta=tta), tempfile.mkdtemp()
        for c in val.heldout:
            imgs = val.index.case(c).images
            v = read_channels(imgs if len(imgs) > 1 else imgs[0])
            write_mask_like(pred(v)[0], v, f'{d}/{c}.nii.gz')
        s = score_folder(d, val)
        row[tta] = [round(s['heldout_dice'], 4), [round(x, 4) for x in s['ci95']], s['n_heldout']]
    print(json.dumps(row), flush=True)
    open('/work/scratch/long/tta.jsonl', 'a').write(json.dumps(row) + '\n')
