"""Multi-modal brain tumour (BraTS layout): the four-channel phantom, labels {0, 1, 2, 4} trained as contiguous
classes and written back, and region evaluation (whole tumour, tumour core, enhancing tumour)."""
import numpy as np
import pytest
from conftest import segcore, read_json, TINY_TRAIN
from segcore.data import discover
from segcore.io import read_image

MODS = ['t1n', 't1c', 't2w', 't2f']


@pytest.fixture(scope='module')
def brats(tmp_path_factory):
    "A 6-case BraTS phantom written by the CLI (read-only for the tests: copy it to change it)."
    out = tmp_path_factory.mktemp('brats') / 'data'
    r = segcore('phantom', out, '--kind', 'brats', '--n', '6', '--seed', '1')
    assert 'BraTS' in r.stdout and 'synthetic' in r.stdout
    return out


def test_phantom_layout_audit_clean(brats, tmp_path):
    idx = discover(brats)
    assert idx.layout == 'multimodal' and idx.channel_names == MODS and idx.synthetic
    assert idx.classes == {0: 'background', 1: 'necrotic tumour core', 2: 'peritumoral oedema', 4: 'enhancing tumour'}
    assert [c.case_id for c in idx.labelled] == [f'phantom_{i:03d}' for i in range(6)]
    c = idx.labelled[0]
    assert [p.name for p in c.images] == [f'phantom_000_{m}.nii.gz' for m in MODS]
    assert sorted(np.unique(read_image(c.label).array).tolist()) == [0, 1, 2, 4]
    segcore('audit', brats, '--json', tmp_path / 'a.json')
    rep = read_json(tmp_path / 'a.json')
    assert rep['usable_pairs'] == 6 and rep['findings'] == [] and rep['synthetic'] and rep['layout'] == 'multimodal'


def test_missing_modality_is_a_finding(brats, tmp_path):
    import shutil
    data = tmp_path / 'd'
    shutil.copytree(brats, data)
    (data / 'phantom_002' / 'phantom_002_t2f.nii.gz').unlink()
    r = segcore('audit', data, '--json', tmp_path / 'a.json', check=False)
    assert 'Traceback' not in r.stderr
    rep = read_json(tmp_path / 'a.json')
    errs = [f for f in rep['findings'] if f['severity'] == 'error']
    assert rep['usable_pairs'] == 5 and len(errs) == 1
    assert errs[0]['case'] == 'phantom_002' and errs[0]['file'] == 'phantom_002/phantom_002_t2f.nii.gz'
    assert 'missing channel(s) t2f' in errs[0]['message']


@pytest.fixture(scope='module')
def brats_run(brats, tmp_path_factory):
    "A tiny model trained on the BraTS phantom (2 folds: 6 cases leave 1 held out), and its predictions of every case."
    base = tmp_path_factory.mktemp('brats_run')
    segcore('train', '--data', brats, '--out', base / 'run', '--quiet', *TINY_TRAIN, '--set', 'n_folds=2')
    segcore('predict', '--model', base / 'run', '--input', brats, '--out', base / 'pred', '--quiet')
    return base / 'run', base / 'pred'


def test_labels_0124_train_as_classes_and_are_written_back(brats, brats_run):
    import csv, torch
    run, pred = brats_run
    ck = torch.load(run / 'best.pt', map_location='cpu', weights_only=True)
    assert ck['classes'] == [0, 1, 2, 3] and ck['label_values'] == [0, 1, 2, 4]
    assert ck['model_spec']['out_channels'] == 4 and ck['class_names']['3'] == 'enhancing tumour'
    written = set()
    for i in range(6):
        m = read_image(pred / f'phantom_{i:03d}.nii.gz')
        ref = read_image(brats / f'phantom_{i:03d}' / f'phantom_{i:03d}_seg.nii.gz')
        assert m.spatial_shape == ref.spatial_shape and np.allclose(m.affine, ref.affine)
        written |= set(np.unique(m.array).tolist())
    assert written <= {0, 1, 2, 4} and 4 in written and 3 not in written      # class 3 written as label 4
    with open(pred / 'volumes.csv') as f: rows = list(csv.DictReader(f))
    assert [(r['class'], r['name']) for r in rows[:3]] == [('1', 'necrotic tumour core'), ('2', 'peritumoral oedema'),
                                                          ('4', 'enhancing tumour')]
    m0 = read_image(pred / 'phantom_000.nii.gz').array
    assert int(rows[2]['voxels']) == int((m0 == 4).sum())



def test_postprocessing_report_names_label_values(brats_run, tmp_path):
    "Post-processing is chosen on the model's classes 0..3; its report says which label value (0/1/2/4) each is."
    import shutil
    run = tmp_path / 'run'
    shutil.copytree(brats_run[0], run)
    segcore('postprocess', '--model', run, '--quiet')
    report = read_json(run / 'postprocessing_report.json')['report']
    assert report and all(r['label value'] == {1: 1, 2: 2, 3: 4}[r['class']] for r in report)

def _monai_regions(pred, ref, spacing):
    "Region Dice and HD95 of two label maps by MONAI on the BraTS region masks."
    import torch
    from monai.metrics import DiceMetric, compute_hausdorff_distance
    out = {}
    for k, v in {'whole_tumour': [1, 2, 4], 'tumour_core': [1, 4], 'enhancing_tumour': [4]}.items():
        p, r = (torch.as_tensor(np.isin(a, v)[None, None].astype(np.float32)) for a in (pred, ref))
        out[k] = (DiceMetric(include_background=True)(p, r).item(),
                  compute_hausdorff_distance(p, r, include_background=True, percentile=95, spacing=spacing).item())
    return out


def test_evaluate_json_regions_match_monai(brats, brats_run, tmp_path):
    run, pred = brats_run
    r = segcore('evaluate', '--pred', pred, '--labels', brats, '--json', tmp_path / 'f.json')
    assert 'region enhancing_tumour (labels 4): Dice mean' in r.stdout
    f = read_json(tmp_path / 'f.json')
    assert list(f['regions']) == ['whole_tumour', 'tumour_core', 'enhancing_tumour']
    assert f['regions']['tumour_core']['labels'] == [1, 4] and f['regions']['whole_tumour']['dice']['n'] == 6
    assert 'diagonal' in f['summary']['region_rules'] and set(f['summary']['per_class']) == {'1', '2', '4'}
    rows = {(x['case'], x['region']): x for x in f['region_cases']}
    for i in range(6):
        c = f'phantom_{i:03d}'
        ref = read_image(brats / c / f'{c}_seg.nii.gz')
        theirs = _monai_regions(read_image(pred / f'{c}.nii.gz').array, ref.array, tuple(ref.spacing))
        for k, (d, h) in theirs.items():
            assert rows[c, k]['dice'] == pytest.approx(d, abs=1e-6) and rows[c, k]['hd95'] == pytest.approx(h, abs=1e-6)
    segcore('evaluate', '--model', run, '--data', brats, '--json', tmp_path / 'r.json', '--quiet')
    e = read_json(tmp_path / 'r.json')                     # the run's evaluation: the same masks, the same regions
    assert [(x['case'], x['region']) for x in e['region_cases']] == list(rows)
    for x in e['region_cases']: assert x['dice'] == pytest.approx(rows[x['case'], x['region']]['dice'], abs=1e-6)
