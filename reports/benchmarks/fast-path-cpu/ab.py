"""Interleaved steps/s of training variants (real patches + augmentation), on the hippocampus fold 0."""
import sys, json, torch
from segcore.config import load_config
from segcore import bench
torch.set_num_threads(2)
DATA = '../shared/data/hippocampus'
variants = json.loads(sys.argv[1])
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 2
trs = {}
for name, ov in variants.items():
    cfg = load_config('quick', overrides={'data': DATA, 'time_limit_s': None, **ov})
    trs[name] = (bench._bench_trainer(cfg), cfg)
res = {k: [] for k in trs}
for r in range(rounds):
    for name, (tr, cfg) in trs.items():
        def get(): return tr.augment(*tr.sample_batch())
        rate = bench._steps_per_s(tr, get, 8, 2)
        res[name].append(rate * cfg.batch_size)
        print(name, r, f'{rate:.2f} steps/s {rate*cfg.batch_size:.1f} samples/s', flush=True)
for k, v in res.items(): print(f'{k:30s} samples/s {sum(v)/len(v):.1f}  {v}')
