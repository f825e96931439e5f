"""One short quick-profile run on the real hippocampus data (fold 0, seed-1 split), `steps` steps at `threads` CPU
threads: prints a JSON line (train seconds, validation Dice). Used by compare.sh."""
import json, shutil, sys, time
from segcore.study import Study
from segcore.train import train
out, name, threads, steps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
st = Study(out, data='../shared/data/hippocampus', profile='quick', seed=1)
cfg = st.config('short', num_threads=threads, epochs=steps // 10, tensorboard=False, seed=int(name[-1]))
d = st.run_dir(name)
d.mkdir(parents=True, exist_ok=True)
shutil.copyfile(f'{out}/splits.json', d / 'splits.json')
t = time.time()
s = train(cfg, d, progress=False)
print(json.dumps({'run': name, 'threads': threads, 'steps': steps, 'train_s': s['train_seconds'],
                  'wall_s': round(time.time() - t, 2), 'val_dice': s['validation']['mean_foreground_dice']}))
