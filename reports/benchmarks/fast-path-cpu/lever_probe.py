"""Single-run levers not measured before at the plateau: the quick profile fixed at 3,000 steps (120 epochs × 25,
seed given) with intensity augmentation only, with mild affine augmentation only (no flips: the crops share one
orientation, NOTES §15), and with lr 1e-3 or 6e-3 instead of 3e-3; validation-fold Dice (n = 34, held-out
untouched), paired per case against the same seed's plain run (`EMA_s<seed>`, ema_probe.py: bit-identical to a
plain run).
Usage: lever_probe.py OUT.jsonl NAME:SEED [NAME:SEED …]"""
import sys, json, shutil, time
import numpy as np
from segcore.config import load_config
from segcore.plan import plan_dataset
from segcore.train import Trainer
from segcore.rundir import RunDir
from segcore.stats import bootstrap_ci

DATA, RUNS = '../shared/data/hippocampus', '/work/scratch/speed/runs'
_AFFINE = dict(flip_prob=0.0, affine_prob=0.2, rotate_deg=[15.0, 15.0, 15.0], scale_range=[0.85, 1.15],
               shear=0.0, elastic_prob=0.0, bias_prob=0.0, noise_prob=0.0, smooth_prob=0.0, brightness_prob=0.0,
               contrast_prob=0.0, gamma_prob=0.0)
LEVERS = {'INT': {'augment': 'intensity'}, 'AFF': {'augment': _AFFINE}, 'LR1': {'lr': 1e-3}, 'LR6': {'lr': 6e-3}}

def per_case(run):
    "Mean foreground Dice per validation case of a finished run."
    return {r['case']: float(np.nanmean([r['dice_1'], r['dice_2']])) for r in RunDir(run).val_rows()}

out = sys.argv[1]
plan = plan_dataset(DATA, 5, 0.2, 0)
for arg in sys.argv[2:]:
    name, seed = arg.split(':')
    ov = {'data': DATA, 'tensorboard': False, 'checkpoint_every': 1000, 'epochs': 120, 'seed': int(seed),
          **LEVERS[name]}
    d = f'{RUNS}/{name}_s{seed}'
    shutil.rmtree(d, ignore_errors=True)
    t0 = time.time()
    s = Trainer(load_config('quick', overrides=ov, plan=plan), d, False, None, plan).fit()
    a, b = per_case(d), per_case(f'{RUNS}/EMA_s{seed}')
    diff = [a[i] - b[i] for i in sorted(a)]
    m, lo, hi = bootstrap_ci(diff, seed=0)
    r = {'name': f'{name}_s{seed}', 'overrides': LEVERS[name], 'steps': 3000,
         'val_dice': round(s['validation']['mean_foreground_dice'], 4), 'ci95': s['validation']['ci95'],
         'paired_vs_plain': round(m, 4), 'paired_ci95': [round(lo, 4), round(hi, 4)],
         'better_cases': int(sum(x > 0 for x in diff)), 'n': len(diff),
         'train_seconds': round(s['train_seconds'], 1), 'wall': round(time.time() - t0, 1)}
    print(json.dumps(r), flush=True)
    open(out, 'a').write(json.dumps(r) + '\n')
