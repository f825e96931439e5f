"""Steps/s of the quick profile's trainer with DynUNet variants (real hippocampus patches), interleaved."""
import time, json, dataclasses, tempfile, sys
from segcore.config import load_config
from segcore.plan import plan_dataset
from segcore.train import Trainer
DATA = '../shared/data/hippocampus'
plan = plan_dataset(DATA, 5, 0.2, 0)
variants = json.loads(sys.argv[1])
trainers = {}
for name, ov in variants.items():
    cfg = load_config('quick', overrides={'data': DATA, 'tensorboard': False, **ov}, plan=plan)
    t = Trainer(cfg, tempfile.mkdtemp(), progress=False, plan=plan)
    t.source = __import__('segcore.sources', fromlist=['x']).resolve_data(DATA, progress=False)
    t.setup_data()
    t.setup_model()
    trainers[name] = t
for rnd in range(2):
    for name, t in trainers.items():
        r = t.measure_step_rate(warmup=3, steps=8, windows=1, max_s=30)
        print(rnd, name, round(r, 2), flush=True)
