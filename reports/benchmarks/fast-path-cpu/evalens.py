"""Validation-fold Dice (n = 34) of an ensemble of finished runs (mean of softmax), held-out untouched."""
import sys, json, tempfile, dataclasses
from segcore.peer import peer_split, score_folder, _predict_heldout
split = peer_split('../shared/data/hippocampus')
val = dataclasses.replace(split, heldout=split.val)          # the peer's prediction and scoring, on the validation fold
runs, tta = sys.argv[2:], sys.argv[1]
d = tempfile.mkdtemp()
_predict_heldout(runs, val, d, False, tta)
s = score_folder(d, val)
row = {'runs': runs, 'tta': tta, 'val': [round(s['heldout_dice'], 4), [round(x, 4) for x in s['ci95']], s['n_heldout']]}
print(json.dumps(row), flush=True)
open('/work/scratch/long/ens.jsonl', 'a').write(json.dumps(row) + '\n')
