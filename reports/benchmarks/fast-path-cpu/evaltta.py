"""Validation-fold Dice (n = 34) of finished runs, predicted without and with flip TTA (held-out untouched)."""
import sys, json, tempfile, dataclasses
from segcore.peer import peer_split, score_folder, _predict_heldout
split = peer_split('../shared/data/hippocampus')
val = dataclasses.replace(split, heldout=split.val)          # the peer's prediction and scoring, on the validation fold
for run in sys.argv[1:]:
    row = {'run': run}
    for tta in ('none', 'flips'):
        d = tempfile.mkdtemp()
        _predict_heldout(run, val, d, False, tta)
        s = score_folder(d, val)
        row[tta] = [round(s['heldout_dice'], 4), [round(x, 4) for x in s['ci95']], s['n_heldout']]
    print(json.dumps(row), flush=True)
    open('/work/scratch/long/tta.jsonl', 'a').write(json.dumps(row) + '\n')
