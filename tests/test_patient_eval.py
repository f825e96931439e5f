"""Per-slice and per-patient evaluation of 2D slice datasets (`patient-slices`: PATIENT/X.tif + PATIENT/X_mask.tif).
Reference: Dice computed by hand on `np.stack` of each patient's slices."""
import shutil
import numpy as np
import pytest
import tifffile
from PIL import Image
from conftest import segcore, read_json
from segcore.evaluate import evaluate_folders
from segcore.infer import collect_inputs, prediction_files


def stacked_dice(preds, refs) -> float:
    "Reference: Dice of the foreground of the stacked slices `(N, H, W)`; NaN when both stacks are empty."
    p, r = np.stack(preds) > 0, np.stack(refs) > 0
    den = p.sum() + r.sum()
    return float(2 * (p & r).sum() / den) if den else float('nan')


def box(r0=0, r1=0, c0=0, c1=0) -> np.ndarray:
    a = np.zeros((16, 16), np.uint8)
    a[r0:r1, c0:c1] = 1
    return a


# patient -> slices (reference, prediction): A's first slice is empty with 4 false positives, B has an empty slice
# predicted empty, C has no foreground at all
SPEC = {'A': [(box(), box(2, 4, 2, 4)), (box(2, 4, 2, 4), box(2, 4, 2, 8)), (box(1, 9, 1, 9), box(1, 9, 1, 9))],
        'B': [(box(3, 6, 3, 6), box(4, 7, 4, 7)), (box(), box()), (box(0, 10, 0, 10), box(0, 10, 0, 5))],
        'C': [(box(), box()), (box(), box())]}


@pytest.fixture
def tiny(tmp_path):
    "A hand-made patient-slices dataset (TIFF, masks 0/255) and a flat folder of predictions named by case id."
    rng = np.random.default_rng(0)
    ds, pred = tmp_path / 'ds', tmp_path / 'pred'
    pred.mkdir()
    for pat, slices in SPEC.items():
        (ds / pat).mkdir(parents=True)
        for k, (ref, prd) in enumerate(slices):
            tifffile.imwrite(ds / pat / f'{pat}_{k}.tif', rng.integers(0, 255, (16, 16), dtype=np.uint8))
            tifffile.imwrite(ds / pat / f'{pat}_{k}_mask.tif', ref * 255)
            tifffile.imwrite(pred / f'{pat}_{k}.tif', prd * 255)
    return ds, pred


def test_per_patient_dice_is_dice_of_the_stacked_slices(tiny, tmp_path):
    "References nested in patient folders are found by case id; per-patient Dice = Dice of np.stack of the slices."
    ds, pred = tiny
    r = evaluate_folders(pred, ds, tmp_path / 'e.json')
    s = r['summary']
    assert (s['n_cases'], s['partial'], s['n_patients'], s['patients_without_foreground']) == (8, False, 3, 1)
    got = {p['patient']: p for p in r['patients']}
    assert sorted(got) == ['A', 'B', 'C'] and [got[p]['n_slices'] for p in 'ABC'] == [3, 3, 2]
    want = {p: stacked_dice([b for _, b in sl], [a for a, _ in sl]) for p, sl in SPEC.items()}
    np.testing.assert_allclose([got[p]['dice'] for p in 'ABC'], [want[p] for p in 'ABC'], rtol=1e-12)
    assert got['A']['dice'] == pytest.approx(2 * 68 / (80 + 68)) and np.isnan(got['C']['dice'])
    # per slice differs: A's slices score 0, 0.5, 1 (mean 0.5), pooled 0.92; confusing them fails here
    slice_a = [c['dice'] for c in r['cases'] if c['case'].startswith('A_')]
    assert slice_a == pytest.approx([0.0, 0.5, 1.0]) and abs(np.mean(slice_a) - got['A']['dice']) > 0.4
    assert s['per_patient_mean_foreground_dice'] == pytest.approx((want['A'] + want['B']) / 2)   # C (NaN) left out
    assert abs(s['per_patient_mean_foreground_dice'] - s['mean_foreground_dice']) > 0.05
    lo, hi = s['per_patient_ci95']
    assert min(want['A'], want['B']) <= lo <= s['per_patient_mean_foreground_dice'] <= hi <= max(want['A'], want['B'])
    e = read_json(tmp_path / 'e.json')
    assert e['summary']['n_patients'] == 3 and {'patient', 'class', 'dice', 'n_slices'} <= set(e['patients'][0])


def test_ungrouped_labels_keep_the_per_case_report(tiny, tmp_path):
    "Labels in a flat folder (no dataset): each case is its own patient, no per-patient block; per-case rows unchanged."
    ds, pred = tiny
    flat = tmp_path / 'labels'
    flat.mkdir()
    for m in ds.glob('*/*_mask.tif'): shutil.copy(m, flat / m.name.replace('_mask', ''))
    r, nested = evaluate_folders(pred, flat), evaluate_folders(pred, ds)
    assert 'patients' not in r and 'n_patients' not in r['summary'] and r['summary']['n_cases'] == 8
    assert r['cases'] == nested['cases'] and r['summary']['mean_foreground_dice'] == nested['summary'][
        'mean_foreground_dice']


def test_predict_inputs_of_a_patient_slices_folder(tiny):
    "`segcore predict --input DATASET`: only the slice images, named by case id; never a mask."
    ds, _ = tiny
    items = collect_inputs(ds)
    assert [n for n, _ in items] == [f'{p}_{k}' for p, sl in SPEC.items() for k in range(len(sl))]
    assert all(p.parent.name == n.split('_')[0] and not p.stem.endswith('_mask') for n, p in items)
    assert prediction_files(items)[:2] == ['A_0.tif', 'A_1.tif']


def test_derived_hippocampus_slices(shared_data, tmp_path):
    "Real data: per-patient Dice of hippocampus slices (shifted masks as predictions) = Dice of the stacked slices."
    from segcore.derive import slices_dataset
    ds = slices_dataset(shared_data / 'hippocampus', tmp_path / 'hs', max_patients=6, progress=False)
    pred, refs = tmp_path / 'pred', {}
    pred.mkdir()
    for m in sorted(ds.glob('*/*_mask.tif')):
        a = tifffile.imread(m)
        shifted = np.zeros_like(a)
        shifted[1:] = a[:-1]                                        # one pixel down: a known, imperfect prediction
        if not a.any(): shifted[:2, :2] = 255                       # and 4 false-positive pixels on empty slices
        tifffile.imwrite(pred / m.name.replace('_mask', ''), shifted)
        refs.setdefault(m.parent.name, []).append((a, shifted))
    r = evaluate_folders(pred, ds)
    assert r['summary']['n_patients'] == len(refs) == 6 and r['summary']['n_cases'] == sum(map(len, refs.values()))
    for p in r['patients']:
        sl = refs[p['patient']]
        assert p['n_slices'] == len(sl)
        assert p['dice'] == pytest.approx(stacked_dice([b for _, b in sl], [a for a, _ in sl]), rel=1e-12)
    # a false positive on an empty slice scores 0 per slice but weighs 4 pixels in the patient's volume
    assert r['summary']['per_patient_mean_foreground_dice'] - r['summary']['mean_foreground_dice'] > 0.1


def test_cli_end_to_end_on_phantom_patient_slices(tmp_path):
    "2D phantom rearranged as patient-slices (2 slices per patient): train, evaluate the test split, predict, evaluate."
    segcore('phantom', tmp_path / 'ph', '--dim', '2', '--n', '16')
    ds = tmp_path / 'ps'
    for i, p in enumerate(sorted((tmp_path / 'ph' / 'images').glob('*.png'))):     # at 64×64: a quick test
        (ds / f'P{i // 2}').mkdir(parents=True, exist_ok=True)
        Image.open(p).resize((64, 64), Image.BILINEAR).save(ds / f'P{i // 2}' / p.name)
        m = Image.open(tmp_path / 'ph' / 'masks' / p.name).resize((64, 64), Image.NEAREST)
        m.save(ds / f'P{i // 2}' / f'{p.stem}_mask.png')
    run = tmp_path / 'run'
    segcore('train', '--data', ds, '--out', run, '--profile', 'quick', '--quiet', '--set', 'model_size=tiny',
            '--set', 'epochs=1', '--set', 'iterations_per_epoch=2', '--set', 'val_every=1')
    out = segcore('evaluate', '--model', run, '--data', ds, '--split', 'test', '--json', tmp_path / 'e.json',
                  '--quiet').stdout
    e = read_json(tmp_path / 'e.json')
    s = e['summary']
    assert 'held-out' in s['split'] and s['n_patients'] >= 1 and s['n_cases'] == 2 * s['n_patients']
    assert s['per_patient_ci95'][0] <= s['per_patient_mean_foreground_dice'] <= s['per_patient_ci95'][1]
    assert f"per patient (n={s['n_patients']}): mean foreground Dice" in out
    segcore('predict', '--model', run, '--input', ds, '--out', tmp_path / 'pred', '--quiet')
    masks = sorted(p.name for p in (tmp_path / 'pred').glob('*.png'))
    assert masks == [f'phantom_{i:03d}.png' for i in range(16)]            # images only, named by case id
    segcore('evaluate', '--pred', tmp_path / 'pred', '--labels', ds, '--json', tmp_path / 'f.json')
    f = read_json(tmp_path / 'f.json')
    assert (f['summary']['n_cases'], f['summary']['n_patients'], f['summary']['partial']) == (16, 8, False)
    for p in f['patients']:                                        # reference: the written PNGs stacked by hand
        stems = [m.name[:-9] for m in sorted((ds / p['patient']).glob('*_mask.png'))]
        prd = [np.asarray(Image.open(tmp_path / 'pred' / f'{c}.png')) for c in stems]
        ref = [np.asarray(Image.open(ds / p['patient'] / f'{c}_mask.png')) for c in stems]
        assert p['dice'] == pytest.approx(stacked_dice(prd, ref), rel=1e-9, nan_ok=True)
    held = {p['patient']: p['dice'] for p in e['patients']}                # same inference path: same Dice
    assert held and all(q['dice'] == pytest.approx(held[q['patient']], abs=1e-6) for q in f['patients']
                        if q['patient'] in held)
