"""Would weight averaging (EMA) lift the plateau? The quick profile fixed at 3,000 steps (seed given), with an
exponential moving average of the weights kept beside the run (decay per step); at the end, validation-fold Dice
(n = 34, held-out untouched) of the last weights and of the EMA weights, paired per case.
Usage: ema_probe.py OUT.jsonl SEED [SEED …]"""
import sys, json, copy, shutil
import numpy as np, torch
from segcore.config import load_config
from segcore.plan import plan_dataset
from segcore.train import Trainer
from segcore.stats import bootstrap_ci

DATA, DECAYS = '../shared/data/hippocampus', (0.99, 0.998)

class EMATrainer(Trainer):
    "The trainer with EMA copies of the weights (one per decay), updated after every optimiser step."
    emas = None
    def optimizer_step(self):
        super().optimizer_step()
        if self.emas is None: self.emas = {d: copy.deepcopy(self.model).eval() for d in DECAYS}
        with torch.no_grad():
            for d, m in self.emas.items():
                for pe, p in zip(m.parameters(), self.model.parameters()): pe.lerp_(p, 1 - d)
                for be, b in zip(m.buffers(), self.model.buffers()): be.copy_(b)

out = sys.argv[1]
plan = plan_dataset(DATA, 5, 0.2, 0)
for seed in map(int, sys.argv[2:]):
    ov = {'data': DATA, 'tensorboard': False, 'checkpoint_every': 1000, 'epochs': 120, 'seed': seed}
    d = f'/work/scratch/speed/runs/EMA_s{seed}'
    shutil.rmtree(d, ignore_errors=True)
    t = EMATrainer(load_config('quick', overrides=ov, plan=plan), d, False, None, plan)
    t.fit()
    per = {}
    last = t.model
    for name, m in [('last', last), *[(f'ema{k}', v) for k, v in t.emas.items()]]:
        t.model = m
        res, rows = t.validate()
        per[name] = [float(np.nanmean([r['dice_1'], r['dice_2']])) for r in rows]
    t.model = last
    for name, v in per.items():
        m, lo, hi = bootstrap_ci(v, seed=0)
        dm, dlo, dhi = bootstrap_ci(list(np.subtract(v, per['last'])), seed=0)
        r = {'seed': seed, 'weights': name, 'val': round(m, 4), 'ci95': [round(lo, 4), round(hi, 4)],
             'paired_vs_last': round(dm, 4), 'paired_ci95': [round(dlo, 4), round(dhi, 4)]}
        print(json.dumps(r), flush=True)
        open(out, 'a').write(json.dumps(r) + '\n')
