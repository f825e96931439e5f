"""Paired validation-fold difference of two runs (per-case mean foreground Dice), bootstrap 95 % CI."""
import sys, json, numpy as np
from segcore.rundir import RunDir
from segcore.stats import bootstrap_ci
def per_case(run):
    rows = RunDir(run).val_rows()
    out = {}
    for r in rows:
        ks = [k for k in r if k.startswith('dice_') and k != 'dice_0']
        out[r['case_id'] if 'case_id' in r else r['case']] = np.nanmean([np.nan if r[k] is None else r[k] for k in ks])
    return out
a, b = per_case(sys.argv[1]), per_case(sys.argv[2])
ids = sorted(set(a) & set(b))
d = [a[i] - b[i] for i in ids]
m, lo, hi = bootstrap_ci(d, seed=0)
print(json.dumps({'n': len(ids), 'diff': round(m, 4), 'ci95': [round(lo, 4), round(hi, 4)],
                  'better_cases': int(sum(x > 0 for x in d))}))
