"""`segcore bench`: results as JSON + HTML with device, versions and date; the metric values equal MONAI's."""
from conftest import segcore, read_json

TINY = ['--profile', 'tiny', '--set', 'patch_size=[32,32,32]', '--set', 'iterations_per_epoch=2']


def test_bench_metrics_and_infer_write_json_and_html(tmp_path):
    data = tmp_path / 'ph'
    segcore('phantom', data, '--n', '12')
    out = tmp_path / 'bench'
    segcore('bench', 'metrics', '--data', data, '--cases', '3', '--out', out)
    j = read_json(next(out.glob('metrics-*.json')))
    assert j['kind'] == 'metrics' and j['n_cases'] == 3
    assert j['max_abs_diff_hd95'] < 1e-4 and j['max_abs_diff_nsd'] < 1e-4                 # the values equal MONAI's
    assert j['device_info']['type'] == 'cpu' and j['environment']['versions']['monai'] and j['date']
    assert j['command'].startswith('segcore bench')
    page = next(out.glob('metrics-*.html')).read_text()
    assert 'segcore bench metrics' in page and page.startswith('<!doctype html>') and '<script' not in page
    run = tmp_path / 'run'
    segcore('train', '--data', data, '--out', run, '--quiet', *TINY, '--set', 'epochs=1')
    segcore('bench', 'infer', '--model', run, '--cases', '1', '--out', out)
    j = read_json(next(out.glob('infer-*.json')))
    assert j['tta_members'] == 8 and j['n_pairs'] == 1 and j['ratio_ci95'][0] <= j['ratio'] <= j['ratio_ci95'][1]
    assert j['label_agreement'] > 0.999                  # the same windows as MONAI's path: the same work, same labels


def test_bench_train_time_to_dice_curve(tmp_path):
    data = tmp_path / 'ph'
    segcore('phantom', data, '--n', '12')
    out = tmp_path / 'bench'
    segcore('bench', 'train', '--run', tmp_path / 'r', '--data', data, '--out', out, *TINY, '--set', 'epochs=2',
            '--set', 'val_every=1', '--goal', '0')
    j = read_json(next(out.glob('train-*.json')))
    assert [c['epoch'] for c in j['curve']] == [1, 2] and j['curve'][0]['n_val'] >= 1   # the validation fold's curve
    assert not any('heldout' in k for c in j['curve'] for k in c)                     # the held-out split: not there
    assert j['curve'][0]['train_seconds'] < j['curve'][1]['train_seconds']
    lo, hi = j['final_heldout_ci95']                                                  # … but read once, at the end
    assert lo <= j['final_heldout_dice'] <= hi and j['n_heldout'] >= 1 and 'read once' in j['split']
    assert j['curve_split'].startswith('validation fold (fold 0, patient-grouped')
    assert j['goal_dice'] == 0 and j['seconds_to_goal'] == j['curve'][0]['train_seconds']  # any Dice reaches goal 0
    h = next(out.glob('train-*.html')).read_text()
    assert '<svg' in h and 'held-out, final weights' in h and len(h) < 200_000            # a small, self-contained page
