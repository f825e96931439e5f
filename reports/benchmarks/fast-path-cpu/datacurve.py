"""A learning curve in training cases: the quick profile, fixed at 3,000 steps (120 epochs × 25), trained on nested
random subsets of fold 0's 134 training cases; validation-fold Dice (n = 34, patient-grouped; held-out untouched).
Usage: datacurve.py OUT.jsonl N_CASES SEED [N_CASES SEED …]"""
import sys, json, time, shutil
import numpy as np
from segcore.config import load_config
from segcore.plan import plan_dataset
from segcore.train import Trainer

DATA = '../shared/data/hippocampus'

class SubsetTrainer(Trainer):
    "The quick profile's trainer on the first `n` cases of a fixed permutation of the fold's training cases."
    n_cases = None
    def setup_data(self):
        super().setup_data()
        order = np.random.default_rng(0).permutation(len(self.train_ids))    # one permutation: nested subsets
        keep = sorted(order[:self.n_cases])
        self.train_ids = [self.train_ids[i] for i in keep]
        self.train_cases = [self.train_cases[i] for i in keep]

out, args = sys.argv[1], sys.argv[2:]
plan = plan_dataset(DATA, 5, 0.2, 0)
for n, seed in zip(map(int, args[::2]), map(int, args[1::2])):
    ov = {'data': DATA, 'tensorboard': False, 'checkpoint_every': 1000, 'epochs': 120, 'seed': seed}
    cfg = load_config('quick', overrides=ov, plan=plan)
    d = f'/work/scratch/speed/runs/N{n}_s{seed}'
    shutil.rmtree(d, ignore_errors=True)
    SubsetTrainer.n_cases = n
    t0 = time.time()
    s = SubsetTrainer(cfg, d, False, None, plan).fit()
    r = {'name': f'N{n}_s{seed}', 'n_train_cases': s['n_train_cases'], 'seed': seed, 'steps': 3000,
         'val_dice': s['validation']['mean_foreground_dice'], 'ci': s['validation']['ci95'],
         'per_class': {k: v['mean'] for k, v in s['validation']['dice_per_class'].items()},
         'best_epoch': s['best_epoch'], 'train_seconds': s['train_seconds'], 'wall': time.time() - t0}
    print(json.dumps(r), flush=True)
    open(out, 'a').write(json.dumps(r) + '\n')
