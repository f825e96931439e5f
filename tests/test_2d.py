"2D end to end through the CLI, on the 2D phantom: plan → train → validate → predict with 8-way TTA → evaluate."
import json
import numpy as np
import pytest
from conftest import segcore, read_json


@pytest.fixture(scope='module')
def p2d(tmp_path_factory):
    d = tmp_path_factory.mktemp('p2d') / 'data'
    segcore('phantom', d, '--dim', '2', '--n', '16')
    return d


def test_plan_2d(p2d, tmp_path):
    "The plan of 2D data is 2D: a 2D patch within the image, 8-bit images normalised by the dataset's statistics."
    segcore('plan', p2d, '--out', tmp_path / 'plan.json', '--quiet')
    plan = read_json(tmp_path / 'plan.json')
    assert plan['format'] == 'segcore-plan/1' and plan['choices']['dimensions']['value'] == 2
    assert plan['config']['patch_size'] == [128, 128]            # the phantom's 128×128 images
    norm = plan['config']['normalization']
    assert norm[0]['scheme'] == 'dataset' and 0 < norm[0]['mean'] < 255 and norm[0]['std'] > 0
    assert plan['n_cases'] + plan['n_held_out_excluded'] == 16
    assert all(c['reason'] for c in plan['choices'].values())


def test_train_predict_evaluate_2d(p2d, tmp_path):
    "The default 3D patch no longer reaches 2D data: training, validation, d4 TTA prediction and evaluation run."
    run = tmp_path / 'run'
    segcore('train', '--data', p2d, '--out', run, '--profile', 'quick', '--quiet', '--set', 'model_size=tiny',
            '--set', 'epochs=2', '--set', 'iterations_per_epoch=3', '--set', 'val_every=1')
    cfg, plan, s = read_json(run / 'config.json'), read_json(run / 'plan.json'), read_json(run / 'summary.json')
    assert cfg['patch_size'] == plan['config']['patch_size'] == [128, 128]
    assert cfg['normalization'] == plan['config']['normalization'] and s['model']['spatial_dims'] == 2
    assert s['validation']['n'] >= 1 and 0 <= s['validation']['mean_foreground_dice'] <= 1
    preds = tmp_path / 'pred'
    segcore('predict', '--model', run, '--input', p2d / 'images', '--out', preds, '--tta', '--tta-mode', 'd4',
            '--quiet')
    from PIL import Image
    masks = sorted(preds.glob('*.png'))
    assert len(masks) == 16                                       # masks in the input's format (PNG)
    m = np.asarray(Image.open(masks[0]))
    assert m.shape == np.asarray(Image.open(p2d / 'images' / masks[0].name)).shape[:2]
    assert set(np.unique(m).tolist()) <= {0, 255}                 # a binary mask, stored 0/255
    segcore('evaluate', '--pred', preds, '--labels', p2d / 'masks', '--json', tmp_path / 'e.json')
    e = read_json(tmp_path / 'e.json')
    assert e['summary']['n_cases'] == 16 and not e['summary']['partial']
    assert 'area_mm2' in (preds / 'volumes.csv').read_text()
    held = segcore('evaluate', '--model', run, '--data', p2d, '--split', 'test', '--quiet').stdout
    assert 'held-out' in held and 'n=' in held


def test_patch_dims_must_match_data(p2d, tmp_path):
    "A 3D patch on 2D data (the plan switched off) is one clear line naming the way out, not a traceback."
    r = segcore('train', '--data', p2d, '--out', tmp_path / 'r', '--profile', 'tiny', '--plan', 'none', check=False)
    assert r.returncode != 0 and 'Traceback' not in r.stderr
    assert 'is 3D but the data is 2D' in r.stderr and 'segcore plan' in r.stderr


def test_binary_threshold_applied(p2d, tmp_path):
    "A run's probability threshold (what `segcore postprocess` tunes for a binary task) changes predict's masks."
    run = tmp_path / 'run'
    segcore('train', '--data', p2d, '--out', run, '--profile', 'tiny', '--set', 'patch_size=[64, 64]', '--quiet')
    r = segcore('postprocess', '--model', run)
    assert 'chosen on validation fold 0' in r.stdout
    steps = read_json(run / 'postprocessing.json')['steps']
    assert not steps or steps[0]['name'] != 'binary_threshold' or 0 < steps[0]['params']['threshold'] < 1
    from PIL import Image
    area = {}
    for t in (0.02, 0.98):
        (run / 'postprocessing.json').write_text(json.dumps(
            {'steps': [{'name': 'binary_threshold', 'params': {'threshold': t}}]}))
        segcore('predict', '--model', run, '--input', p2d / 'images', '--out', tmp_path / f'p{t}', '--quiet')
        area[t] = sum(int((np.asarray(Image.open(f)) > 0).sum()) for f in (tmp_path / f'p{t}').glob('*.png'))
    assert area[0.02] > area[0.98]                  # a low threshold marks more foreground than a high one


def test_slices_from_real_volumes_foreground_only(shared_data, tmp_path):
    """On axial slices derived from the real hippocampus volumes (per-patient layout, RGB, 0/255 masks): the split is
    by patient, `train_foreground_only` trains on the slices that show the hippocampus and validates on every slice."""
    from segcore.derive import slices_dataset
    data = slices_dataset(shared_data / 'hippocampus', tmp_path / 'slices', max_patients=8, progress=False)
    run = tmp_path / 'run'
    segcore('train', '--data', data, '--out', run, '--profile', 'tiny', '--set', 'patch_size=[32, 48]', '--quiet',
            '--set', 'train_foreground_only=true')
    s, sp = read_json(run / 'summary.json'), read_json(run / 'splits.json')
    train_val = [c for c, p in sp['patients'].items() if c not in sp['test']]
    val = set(sp['folds'][0]['val'])
    fold_train = [c for c in train_val if c not in val]
    assert 0 < s['n_train_cases'] < len(fold_train)             # slices without hippocampus left out of training
    assert s['validation']['n'] == len(val)                      # ... but every validation slice is scored
    pp = s['validation']['per_patient']                          # the patient's slices pooled, with n and CI
    assert pp['n_patients'] == len({sp['patients'][c] for c in val}) and len(pp['per_patient_ci95']) == 2
    patients = {}
    for c, p in sp['patients'].items(): patients.setdefault(p, set()).add(c)
    groups = [set(sp['test'])] + [set(f['val']) for f in sp['folds']]
    assert all(any(cs <= g for g in groups) for cs in patients.values())   # no patient's slices in two sets


def test_tiles_train_resume_predict(p2d, tmp_path):
    """`sampler=tiles`: a grid of patch-sized tiles with jitter and a positive-tile probability; a run killed (-9)
    after its first epoch and resumed ends with the losses of an uninterrupted run (the tile sampler's state is in
    the checkpoint)."""
    import os, signal, subprocess
    from conftest import BIN
    tiles = ['--profile', 'tiny', '--set', 'patch_size=[64, 64]', '--set', 'sampler=tiles', '--set', 'tile_jitter=6',
             '--set', 'tile_stride=[32, 32]', '--set', 'max_tiles_per_image=3', '--set', 'pos_tile_prob=0.7',
             '--set', 'epochs=5', '--set', 'num_threads=1', '--quiet']
    segcore('train', '--data', p2d, '--out', tmp_path / 'straight', *tiles)
    killed = tmp_path / 'killed'
    ipe = read_json(tmp_path / 'straight' / 'config.json')['iterations_per_epoch']
    r = subprocess.run([str(BIN / 'segcore'), 'train', '--data', str(p2d), '--out', str(killed), *tiles],
                       env={**os.environ, 'SEGCORE_FAULT': f'sigkill@{ipe + 1}'}, capture_output=True, timeout=600)
    assert r.returncode == -signal.SIGKILL, r.stderr[-500:]          # killed at a step count, not a moment
    assert len(read_json(killed / 'history.json')) == 1               # mid-epoch 2, after one whole epoch
    segcore('train', '--data', p2d, '--out', killed, *tiles)                # the same command resumes
    a, b = read_json(tmp_path / 'straight' / 'history.json'), read_json(killed / 'history.json')
    assert [r['train_loss'] for r in a] == [r['train_loss'] for r in b] and len(a) == 5
    assert read_json(tmp_path / 'straight' / 'config.json')['sampler'] == 'tiles'
    segcore('predict', '--model', tmp_path / 'straight', '--input', p2d / 'images', '--out', tmp_path / 'pred',
            '--quiet')
    assert len(list((tmp_path / 'pred').glob('*.png'))) == 16
    r = segcore('train', '--data', p2d, '--out', tmp_path / 'bad', *tiles, '--set', 'tile_stride=[80, 80]',
                check=False)
    assert r.returncode == 2 and 'tile_stride' in r.stderr and 'Traceback' not in r.stderr
