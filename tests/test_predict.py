"""`segcore predict`: DICOM series and NIfTI folders in, masks aligned with the source geometry out,
structure volumes in mm³; bad input stops before any mask is written."""
import csv, os
import numpy as np
import pytest
from conftest import segcore, read_json
from segcore.io import read_image, write_nifti, make_affine


def _volumes(out):
    with open(out / 'volumes.csv') as f: return list(csv.DictReader(f))


def _check_aligned(mask_path, src):
    m = read_image(mask_path)
    assert m.spatial_shape == src.spatial_shape and m.array.dtype == np.uint8
    np.testing.assert_allclose(m.affine, src.affine, atol=1e-5)
    return m


def test_predict_dicom_series(shared_data, tiny_run, tmp_path):
    series = shared_data / 'hippocampus-dicom/Study1/13_HCropVolume'
    out = tmp_path / 'out'
    segcore('predict', '--model', tiny_run, '--input', series, '--out', out, '--tta', '--uncertainty', '--quiet')
    src = read_image(series)
    m = _check_aligned(out / '13_HCropVolume.nii.gz', src)
    for k in ('entropy', 'variance', 'mutual_information', 'energy'):
        u = read_image(out / f'13_HCropVolume_{k}.nii.gz')
        assert u.spatial_shape == src.spatial_shape and np.isfinite(u.array).all()
    rows = _volumes(out)
    assert [(r['case'], r['class']) for r in rows] == [('13_HCropVolume', '1'), ('13_HCropVolume', '2')]
    for r in rows:
        assert float(r['volume_mm3']) == pytest.approx(int(r['voxels']) * np.prod(src.spacing)) and int(
            r['voxels']
        ) == int((m.array == int(r['class'])).sum())


def test_predict_nifti_folder_keeps_each_geometry(tiny_run, tmp_path):
    inp = tmp_path / 'in'
    rng = np.random.default_rng(0)
    affs = {'a': make_affine((1.0, 1.0, 1.0)),
            'b': make_affine((0.8, 1.2, 2.0), origin=(10, -4, 3), direction=[[0, 1, 0], [-1, 0, 0], [0, 0, 1]])}
    for name, aff in affs.items():
        write_nifti((rng.random((30, 34, 20)) * 100).astype(np.float32), aff, inp / f'{name}.nii.gz')
    out = tmp_path / 'out'
    segcore(
        'predict', '--model', tiny_run, '--model', tiny_run, '--input', inp, '--out', out, '--quiet'
    )  # a 2-member ensemble
    for name in affs: _check_aligned(out / f'{name}.nii.gz', read_image(inp / f'{name}.nii.gz'))
    vb = [x for x in _volumes(out) if x['case'] == 'b']
    assert all(float(x['volume_mm3']) == pytest.approx(int(x['voxels']) * 0.8 * 1.2 * 2.0) for x in vb)


def test_bad_input_stops_before_any_mask_is_written(tiny_run, tmp_path):
    inp = tmp_path / 'in'
    write_nifti(np.ones((20, 20, 20), np.float32), make_affine((1., 1., 1.)), inp / 'good.nii.gz')
    bad = np.ones((20, 20, 20), np.float32)
    bad[3, 3, 3] = np.nan
    write_nifti(bad, make_affine((1., 1., 1.)), inp / 'zbad.nii.gz')
    out = tmp_path / 'out'
    r = segcore('predict', '--model', tiny_run, '--input', inp, '--out', out, '--quiet', check=False)
    assert r.returncode == 2 and 'zbad.nii.gz' in r.stderr and 'NaN/Inf' in r.stderr
    assert not out.exists() or not list(out.iterdir())


def test_predict_writes_only_into_its_own_folders(tiny_run, tmp_path):
    "Issue 16: a manifest names what predict wrote, a rerun replaces only that; the input's folder is refused."
    inp = tmp_path / 'in'
    write_nifti(np.ones((20, 20, 20), np.float32), make_affine((1., 1., 1.)), inp / 'x.nii.gz')
    out = tmp_path / 'out'
    for _ in range(2): segcore('predict', '--model', tiny_run, '--input', inp, '--out', out, '--quiet')
    m = read_json(out / 'segcore-predict.json')
    assert m['format'] == 'segcore-predict/1' and m['status'] == 'complete' and m['cases'] == ['x']
    assert sorted(m['files']) == ['segcore-predict.json', 'volumes.csv', 'x.nii.gz'] == sorted(os.listdir(out))
    before = (inp / 'x.nii.gz').read_bytes()
    r = segcore('predict', '--model', tiny_run, '--input', inp, '--out', inp, check=False)
    assert r.returncode == 2 and f'{inp}: the output folder is the input {inp}' in r.stderr, r.stderr
    assert os.listdir(inp) == ['x.nii.gz'] and (inp / 'x.nii.gz').read_bytes() == before


def test_predict_missing_model_or_input_is_clear(tiny_run, tmp_path):
    write_nifti(np.ones((20, 20, 20), np.float32), make_affine((1., 1., 1.)), tmp_path / 'in' / 'x.nii.gz')
    r = segcore('predict', '--model', tmp_path / 'nope', '--input', tmp_path / 'in', '--out', tmp_path / 'o',
                check=False)
    assert r.returncode == 2 and 'run folder does not exist' in r.stderr
    r = segcore('predict', '--model', tiny_run, '--input', tmp_path / 'missing.nii.gz', '--out', tmp_path / 'o',
                check=False)
    assert r.returncode == 2 and 'missing.nii.gz: input does not exist' in r.stderr


def test_predict_then_evaluate_folders_contract(tiny_run, tmp_path):
    from segcore.sources import resolve_data
    data = resolve_data('phantom', progress=False).path
    out = tmp_path / 'pred'
    segcore('predict', '--model', tiny_run, '--input', data / 'imagesTr', '--out', out, '--quiet')
    segcore('evaluate', '--pred', out, '--labels', data, '--json', tmp_path / 'e.json', '--tolerance-mm', '2')
    e = read_json(tmp_path / 'e.json')
    assert e['summary']['n_cases'] == 24 and e['summary']['tolerance_mm'] == 2.0
    row = e['cases'][0]
    assert {'case', 'class', 'dice', 'iou', 'hd95', 'assd', 'nsd'} <= set(row) and row['class'] in (1, 2)
    assert {r['class'] for r in e['cases']} == {1, 2} and len(e['cases']) == 48
    for k in ('1', '2'):
        d = e['summary']['per_class'][k]['dice']
        assert d['n'] == 24 and d['ci_low'] <= d['mean'] <= d['ci_high']
    from segcore.metrics import dice
    from segcore.io import read_image
    c = row['case']
    p, r = read_image(out / f'{c}.nii.gz').array, read_image(data / 'labelsTr' / f'{c}.nii.gz').array
    assert abs(row['dice'] - dice(p == row['class'], r == row['class'])) < 1e-12


def test_postprocess_is_chosen_on_validation_and_applied(tiny_run, tmp_path):
    import shutil

    r2 = tmp_path / 'run'
    shutil.copytree(tiny_run, r2)
    segcore('postprocess', '--model', r2, '--quiet')
    rep = read_json(r2 / 'postprocessing_report.json')
    assert 'validation fold 0' in rep['split'] and rep['report'] and (r2 / 'postprocessing.json').exists()
    assert all({'step', 'class', 'before', 'after', 'kept'} <= set(x) for x in rep['report'])
    assert all(x['after'] > x['before'] for x in rep['report'] if x['kept'])
