"""The quick profile with nnU-Net's batch Dice (the Dice term over the whole batch) planned into 300 s, seed 0, on
hippocampus fold 0; validation-fold Dice (held-out untouched). The config has no per-term loss arguments, so the
trainer's `build_loss` is wrapped here: an experiment, not a profile."""
import sys, json, time, shutil
import segcore.train as T
from segcore.config import load_config
from segcore.plan import plan_dataset
_build = T.build_loss
T.build_loss = lambda spec, n, **kw: _build(spec, n, dice={'batch': True})
DATA, out, name = '../shared/data/hippocampus', sys.argv[1], 'Q300_batchdice'
plan = plan_dataset(DATA, 5, 0.2, 0)
cfg = load_config('quick', overrides={'data': DATA, 'tensorboard': False, 'checkpoint_every': 1000, 'budget_s': 300},
                  plan=plan)
d = f'/work/scratch/speed/runs/{name}'
shutil.rmtree(d, ignore_errors=True)
t0 = time.time()
s = T.train(cfg, d, progress=False, plan=plan)
r = {'name': name, 'ov': {'budget_s': 300, 'loss_kwargs': {'dice': {'batch': True}}},
     'val_dice': s['validation']['mean_foreground_dice'], 'ci': s['validation']['ci95'],
     'train_seconds': s['train_seconds'], 'budget': s.get('budget'), 'wall': time.time() - t0,
     'note': 'batch Dice (nnU-Net), quick profile, 300 s, seed 0', 'status': s['status'],
     'best_epoch': s['best_epoch'], 'epochs_run': s['epochs_run']}
print(json.dumps(r), flush=True)
open(out, 'a').write(json.dumps(r) + '\n')
