"""Region-based training (nnU-Net's for BraTS): one sigmoid output per dataset.json region, per-region Dice + BCE,
model selection on the mean region Dice, and label values written back region after region."""
import csv
import numpy as np
import pytest
from conftest import segcore, read_json
from segcore.io import read_image
from segcore.regions import find_region_order, labels_to_regions, region_order, regions_to_labels

BRATS = {'whole_tumour': [1, 2, 4], 'tumour_core': [1, 4], 'enhancing_tumour': [4]}
TINY = ['--profile', 'tiny', '--set', 'epochs=1', '--set', 'iterations_per_epoch=2', '--set', 'n_folds=2']


@pytest.fixture(scope='module')
def brats(tmp_path_factory):
    "A 6-case SYNTHETIC BraTS phantom on a small grid (read-only for the tests)."
    from segcore.phantom_brats import write_brats_phantom
    return write_brats_phantom(tmp_path_factory.mktemp('rbrats') / 'data', n_cases=6, seed=3, shape=(32, 40, 32))


def test_conversion_round_trip(brats):
    regions, order = find_region_order(brats)
    assert list(regions) == ['whole_tumour', 'tumour_core', 'enhancing_tumour'] and order == [2, 1, 4]
    assert region_order(BRATS, [2, 1, 4]) == (BRATS, [2, 1, 4])          # nnU-Net's regions_class_order, declared
    lab = read_image(brats / 'phantom_000' / 'phantom_000_seg.nii.gz').array.astype(np.uint8)
    assert set(np.unique(lab).tolist()) == {0, 1, 2, 4}
    masks = labels_to_regions(lab, regions)
    assert masks.shape == (3, *lab.shape) and (masks[1] <= masks[0]).all() and (masks[2] <= masks[1]).all()
    np.testing.assert_array_equal(regions_to_labels(masks.astype(np.float32), order), lab)      # exact
    hand = np.array([0, 1, 2, 4, 4, 2])
    np.testing.assert_array_equal(labels_to_regions(hand, regions), [[0, 1, 1, 1, 1, 1], [0, 1, 0, 1, 1, 0],
                                                                     [0, 0, 0, 1, 1, 0]])
    p = np.array([[.6, .6, .4, .9], [.2, .7, .7, .9], [.1, .1, .1, .8]])          # (R, 4 voxels) probabilities
    np.testing.assert_array_equal(regions_to_labels(p, order), [2, 1, 1, 4])      # later regions write over earlier


@pytest.fixture(scope='module')
def region_run(brats, tmp_path_factory):
    "A tiny region-trained run on the phantom, and its predictions of every case."
    base = tmp_path_factory.mktemp('rrun')
    r = segcore('train', '--data', brats, '--out', base / 'run', '--quiet', *TINY, '--set', 'region_training=true')
    segcore('predict', '--model', base / 'run', '--input', brats, '--out', base / 'pred', '--quiet', '--tta')
    return base / 'run', base / 'pred', r.stdout


def test_region_run_checkpoint_and_summary(region_run):
    import torch
    run, _, out = region_run
    ck = torch.load(run / 'best.pt', map_location='cpu', weights_only=True)
    assert ck['region_training'] is True and ck['regions'] == BRATS and ck['regions_class_order'] == [2, 1, 4]
    assert ck['model_spec']['out_channels'] == 3 and ck['classes'] == [0, 1, 2] and ck['label_values'] == [0, 1, 2, 4]
    v = read_json(run / 'summary.json')['validation']
    assert v['region_training'] and v['selected_on'].startswith('mean region Dice (whole_tumour, tumour_core')
    assert list(v['dice_per_region']) == list(BRATS) and v['dice_per_region']['tumour_core']['labels'] == [1, 4]
    rows = read_json(run / 'val_cases.json')
    assert v['n'] == len(rows) >= 1
    hist = read_json(run / 'history.json')[-1]
    regional = [hist[f'val_dice_{k}'] for k in BRATS]
    assert hist['val_dice_mean'] == pytest.approx(np.nanmean(regional)) or np.isnan(hist['val_dice_mean'])
    assert 'region training: selected on the mean region Dice' in out and '[SYNTHETIC]' in out


def test_predict_writes_label_values_and_evaluate_scores_regions(brats, region_run, tmp_path):
    run, pred, _ = region_run
    written = set()
    for i in range(6):
        m = read_image(pred / f'phantom_{i:03d}.nii.gz')
        ref = read_image(brats / f'phantom_{i:03d}' / f'phantom_{i:03d}_seg.nii.gz')
        assert m.spatial_shape == ref.spatial_shape and np.allclose(m.affine, ref.affine)
        written |= set(np.unique(m.array).tolist())
    assert written <= {0, 1, 2, 4}
    with open(pred / 'volumes.csv') as f: rows = list(csv.DictReader(f))
    assert [r['class'] for r in rows[:3]] == ['1', '2', '4'] and rows[2]['name'] == 'enhancing tumour'
    assert int(rows[2]['voxels']) == int((read_image(pred / 'phantom_000.nii.gz').array == 4).sum())
    segcore('evaluate', '--model', run, '--data', brats, '--json', tmp_path / 'r.json', '--quiet')
    e = read_json(tmp_path / 'r.json')
    assert list(e['regions']) == list(BRATS) and e['regions']['whole_tumour']['dice']['n'] == 6
    assert set(e['summary']['per_class']) == {'1', '2', '4'}
    r = segcore('evaluate', '--pred', pred, '--labels', brats, '--json', tmp_path / 'f.json')
    assert 'region enhancing_tumour (labels 4): Dice mean' in r.stdout
    assert list(read_json(tmp_path / 'f.json')['regions']) == list(BRATS)


def test_softmax_only_features_are_refused_in_one_line(brats, region_run, tmp_path):
    run, _, _ = region_run
    r = segcore('predict', '--model', run, '--input', brats, '--out', tmp_path / 'u', '--uncertainty', check=False)
    assert r.returncode != 0 and 'Traceback' not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert 'uncertainty works on softmax class probabilities' in r.stderr and not (tmp_path / 'u').exists()
    r = segcore('postprocess', '--model', run, '--data', brats, check=False)
    assert r.returncode != 0 and 'Traceback' not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert 'post-processing works on softmax class probabilities' in r.stderr
    assert not (run / 'postprocessing.json').exists()


def test_region_training_without_regions_is_one_line(tmp_path):
    segcore('phantom', tmp_path / 'mri', '--n', '6')
    r = segcore('train', '--data', tmp_path / 'mri', '--out', tmp_path / 'run', '--quiet', *TINY,
                '--set', 'region_training=true', check=False)
    assert r.returncode != 0 and 'Traceback' not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert 'region_training needs regions declared in its dataset.json' in r.stderr
    assert str(tmp_path / 'mri') in r.stderr
    assert not (tmp_path / 'run').exists()
    r = segcore('train', '--data', tmp_path / 'mri', '--out', tmp_path / 'run', '--quiet', *TINY,
                '--set', 'region_training=true', '--set', 'loss={dice: 1, focal: 1}', check=False)
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1
    assert "region_training takes the loss terms dice and ce/bce (sigmoid per region), not ['focal']" in r.stderr
