"""Issue 9 through `segcore predict` and full disks: every bad input of the catalogue stops predict with a
clear error naming the file before any mask is written; a full disk during training or evaluation is a
clear error that leaves what was written intact, and the rerun finishes."""
import os, shutil
import numpy as np
import pytest
from conftest import segcore, read_json, record_count, SHARED, TINY_TRAIN
from segcore.io import write_nifti, make_affine

AFF = make_affine((1., 1., 1.))


def _good(p):
    write_nifti((np.random.default_rng(0).random((20, 22, 18)) * 100).astype(np.float32), AFF, p)
    return p


def _make(kind, folder):
    "Write one bad input; returns (input path, the file the error must name, text the message must contain)."
    folder.mkdir(parents=True)
    p = folder / 'case.nii.gz'
    if kind in ('truncated_gzip', 'corrupt_gzip', 'zero_byte'):
        raw = _good(folder / 'tmp.nii.gz').read_bytes()
        (folder / 'tmp.nii.gz').unlink()
        if kind == 'truncated_gzip': p.write_bytes(raw[:len(raw) // 2])
        elif kind == 'corrupt_gzip':
            b = bytearray(raw)
            b[len(b) // 2 : len(b) // 2 + 64] = bytes(64)
            p.write_bytes(bytes(b))
        else: p.write_bytes(b'')
        return p, p, {'zero_byte': 'empty (0 bytes)'}.get(kind, 'truncated or corrupt')
    if kind == 'wrong_extension':                 # PNG bytes under a NIfTI name
        from PIL import Image

        Image.fromarray(np.zeros((8, 8), np.uint8)).save(folder / 'x.png')
        (folder / 'x.png').rename(p)
        return p, p, 'truncated or corrupt'
    if kind == 'not_an_image':
        q = folder / 'notes.txt'
        q.write_text('hello')
        return q, q, 'not a recognised image format'
    if kind in ('nan_voxels', 'inf_voxels'):
        a = np.ones((20, 20, 20), np.float32)
        a[4, 4, 4] = np.nan if kind == 'nan_voxels' else np.inf
        write_nifti(a, AFF, p)
        return p, p, 'NaN/Inf'
    if kind == 'two_d_where_3d_expected':
        write_nifti(np.ones((20, 20), np.float32), make_affine((1.0, 1.0)), p)
        return p, p, 'is not 3D'
    if kind == 'four_d_wrong_channels':
        write_nifti(np.ones((20, 20, 20, 3), np.float32), AFF, p)
        return p, p, 'the model expects 1'
    if kind in ('dicom_unreadable_slice', 'dicom_missing_slice'):
        import SimpleITK as sitk
        src = SHARED / 'hippocampus-dicom/Study1/13_HCropVolume'
        if not src.is_dir(): pytest.skip('real DICOM data not found')
        d = folder / 'series'
        shutil.copytree(src, d)
        files = [f.split('/')[-1] for f in sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(d))]
        if kind == 'dicom_missing_slice':
            (d / files[len(files) // 2]).unlink()
            return d, d, 'missing slice'
        bad = d / files[3]
        bad.write_bytes(bad.read_bytes()[:200])
        return d, bad, 'could not be read'
    raise ValueError(kind)


CATALOGUE = ['truncated_gzip', 'corrupt_gzip', 'zero_byte', 'wrong_extension', 'not_an_image', 'nan_voxels',
             'inf_voxels', 'two_d_where_3d_expected', 'four_d_wrong_channels', 'dicom_unreadable_slice',
             'dicom_missing_slice']
RESULTS = {}


@pytest.mark.parametrize('kind', CATALOGUE)
def test_predict_bad_input_catalogue(tiny_run, tmp_path, kind):
    inp, named, text = _make(kind, tmp_path / 'in')         # skips when its data is absent: then not counted
    RESULTS[kind] = False
    if inp.is_file() and inp.parent.name == 'in' and kind != 'not_an_image':
        _good(tmp_path / 'in' / 'another.nii.gz')              # a good case beside it: still nothing is written
    out = tmp_path / 'out'
    r = segcore('predict', '--model', tiny_run, '--input', inp, '--out', out, '--quiet', check=False)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert str(named) in r.stderr and text in r.stderr, r.stderr
    assert 'Traceback' not in r.stderr
    assert not out.exists() or not list(out.iterdir()), 'a mask was written before the bad input was found'
    RESULTS[kind] = True


def test_predict_catalogue_count():
    "Every catalogue entry that ran passed (the count is printed in the test summary)."
    if not RESULTS: pytest.skip('catalogue not run')
    record_count('bad-input catalogue through segcore predict', len(RESULTS), sum(RESULTS.values()))
    assert all(RESULTS.values()), [k for k, ok in RESULTS.items() if not ok]


def test_disk_full_during_training_then_resume(tmp_path):
    out = tmp_path / 'run'
    env = {**os.environ, 'SEGCORE_FAULT': 'enospc@last.pt'}
    r = segcore('train', '--data', 'phantom', '--out', out, '--quiet', *TINY_TRAIN, env=env, check=False)
    assert r.returncode == 2 and 'last.pt: No space left on device' in r.stderr and 'Traceback' not in r.stderr, (
        r.stderr
    )
    assert (out / 'config.json').exists() and not (out / 'last.pt').exists()
    assert not [p.name for p in out.iterdir() if p.name.endswith('.tmp')], 'temp file left behind'
    segcore(
        'train', '--data', 'phantom', '--out', out, '--quiet', *TINY_TRAIN
    )  # space again: the same command finishes
    assert read_json(out / 'summary.json')['status'] == 'completed'


def test_disk_full_during_evaluation_keeps_earlier_results(tiny_run, tmp_path):
    js = tmp_path / 'eval.json'
    data = read_json(tiny_run / 'summary.json')['data']['path']
    segcore('evaluate', '--model', tiny_run, '--data', data, '--split', 'test', '--json', js, '--quiet')
    before = js.read_bytes()
    env = {**os.environ, 'SEGCORE_FAULT': 'enospc@eval.json'}
    r = segcore('evaluate', '--model', tiny_run, '--data', data, '--split', 'val', '--json', js, '--quiet', env=env,
                check=False)
    assert r.returncode == 2 and f'{js}: No space left on device' in r.stderr and 'intact' in r.stderr
    assert js.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ['eval.json']
