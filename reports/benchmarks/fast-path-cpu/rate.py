"""How well does the budget planner's step-rate measurement predict the rate the run then trains at?
One fresh process per call (as a real run): measure with a variant, set the model up afresh (as plan_budget does),
then time 100 real training steps. Prints one JSON line."""
import json, sys, time, torch
from segcore.config import load_config
from segcore.train import Trainer
from segcore.sources import resolve_data
warmup, steps, windows = map(int, sys.argv[1:4])
cfg = load_config('quick', overrides={'data': '../shared/data/hippocampus'})
t = Trainer(cfg, '/tmp/rate-run', progress=False)
t.source = resolve_data(cfg.data, progress=False)
t.setup_data()
t.setup_model()
t0 = time.perf_counter()
rate = t.measure_step_rate(warmup=warmup, steps=steps, windows=windows)
cost = time.perf_counter() - t0
t.setup_model()
t.model.train()
def real(): return t.augment(*t.sample_batch())
t1 = time.perf_counter()
for i in range(100): t.train_step(*real(), i)
actual = 100 / (time.perf_counter() - t1)
print(json.dumps({'warmup': warmup, 'steps': steps, 'windows': windows, 'measured': rate, 'actual': actual,
                  'ratio': rate / actual, 'measure_s': cost}))
