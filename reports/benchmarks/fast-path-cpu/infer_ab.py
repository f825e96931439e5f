"""Inference-side levers on the validation fold (n = 34, held-out untouched), for finished runs or their ensemble:
sliding-window overlap and keeping the largest component per class. Per-case Dice of every variant, paired
differences against the plain prediction (overlap of the run's config, no post-processing).
Usage: infer_ab.py OUT.jsonl 'RUN1 RUN2 …' ['RUN …' …]"""
import sys, json
from segcore.peer import peer_split, _case_dice, _foreground
from segcore.infer import Predictor, read_channels
from segcore.data import load_case
from segcore.postprocess import keep_largest_component
from segcore.stats import bootstrap_ci
split = peer_split('../shared/data/hippocampus')
refs = {c: load_case(split.index.case(c), split.index) for c in split.val}
classes = _foreground(split, [r.label for r in refs.values()])
out = sys.argv[1]
for group in sys.argv[2:]:
    runs = group.split()
    per, pred = {}, Predictor(runs, postprocess='none')        # the models loaded once, each image read once
    for case in split.val:
        v, ref = read_channels(split.index.case(case).images[0]), refs[case].label
        for ov in (0.5, 0.75):
            for c in pred.cfgs: c.val_overlap = ov
            lab = pred(v)[0]
            per.setdefault(f'ov{ov}', {})[case] = _case_dice(lab, ref, classes)
            lcc = keep_largest_component(lab, classes=classes)
            per.setdefault(f'ov{ov}+lcc', {})[case] = _case_dice(lcc, ref, classes)
    base = per['ov0.5']
    for k, d in per.items():
        m, lo, hi = bootstrap_ci(list(d.values()), seed=0)
        diff = [d[c] - base[c] for c in base]
        dm, dlo, dhi = bootstrap_ci(diff, seed=0)
        row = {'runs': runs, 'variant': k, 'val': round(m, 4), 'ci95': [round(lo, 4), round(hi, 4)],
               'paired_vs_ov0.5': round(dm, 4), 'paired_ci95': [round(dlo, 4), round(dhi, 4)],
               'better': sum(x > 1e-9 for x in diff), 'worse': sum(x < -1e-9 for x in diff), 'n': len(diff)}
        print(json.dumps(row), flush=True)
        open(out, 'a').write(json.dumps(row) + '\n')
