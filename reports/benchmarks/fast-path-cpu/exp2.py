"""Train variants at a time budget on hippocampus fold 0; print validation-fold Dice (held-out untouched)."""
import sys, json, time, shutil
from segcore.config import load_config
from segcore.train import train
from segcore.plan import plan_dataset
DATA = sys.argv[3] if len(sys.argv) > 3 else '../shared/data/hippocampus'
variants = json.loads(open(sys.argv[1]).read())
out = sys.argv[2]
plan = plan_dataset(DATA, 5, 0.2, 0)
for name, ov in variants.items():
    note = ov.pop('note', None)
    ov = {'data': DATA, 'tensorboard': False, 'checkpoint_every': 1000, **ov}
    cfg = load_config('quick', overrides=ov, plan=plan)
    d = f'/work/scratch/speed/runs/{name}'
    shutil.rmtree(d, ignore_errors=True)
    t0 = time.time()
    s = train(cfg, d, progress=False, plan=plan)
    r = {'name': name, 'ov': ov, 'val_dice': s['validation']['mean_foreground_dice'], 'ci': s['validation']['ci95'],
         'train_seconds': s['train_seconds'], 'budget': s.get('budget'), 'wall': time.time() - t0, 'note': note,
         'status': s['status'], 'best_epoch': s['best_epoch'],
         'epochs_run': s['epochs_run']}
    print(json.dumps(r), flush=True)
    open(out, 'a').write(json.dumps(r) + '\n')
