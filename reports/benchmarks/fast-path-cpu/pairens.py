"""Paired validation-fold difference (n = 34, held-out untouched) between two ensembles of finished runs.
Usage: pairens.py 'RUN_A1 RUN_A2 …' 'RUN_B1 …': mean paired difference A − B of per-case mean foreground Dice."""
import sys, json, tempfile, dataclasses
from segcore.peer import peer_split, score_folder, _predict_heldout
from segcore.stats import bootstrap_ci
split = peer_split('../shared/data/hippocampus')
val = dataclasses.replace(split, heldout=split.val)          # the peer's prediction and scoring, on the validation fold
scores = []
for group in sys.argv[1:3]:
    d = tempfile.mkdtemp()
    _predict_heldout(group.split(), val, d, False)
    scores.append(score_folder(d, val))
a, b = (s['per_case'] for s in scores)
diff = [a[c] - b[c] for c in a]
m, lo, hi = bootstrap_ci(diff, seed=0)
row = {'a': sys.argv[1].split(), 'b': sys.argv[2].split(), 'a_val': round(scores[0]['heldout_dice'], 4),
       'b_val': round(scores[1]['heldout_dice'], 4), 'diff': round(m, 4), 'ci95': [round(lo, 4), round(hi, 4)],
       'better_cases': sum(x > 0 for x in diff), 'n': len(diff)}
print(json.dumps(row), flush=True)
