"""Bad-input catalogue: every problem yields an audit finding (and no crash) and a loader error that
names the file and the problem. The catalogue size and pass count are printed."""
import json
import numpy as np
import pytest
from conftest import segcore, read_json
from segcore.core import DataError
from segcore.io import write_nifti, make_affine
from segcore.data import discover, load_case

AFF = make_affine((1., 1., 1.))
SHAPE = (10, 12, 8)


def _img(rng): return (rng.random(SHAPE) * 100).astype(np.float32)
def _lab():
    l = np.zeros(SHAPE, np.uint8)
    l[2:5, 3:7, 2:5] = 1
    l[5:8, 3:7, 2:5] = 2
    return l


def _corrupt_gzip(p, good):
    b = bytearray(good)
    b[len(b) // 2 : len(b) // 2 + 64] = bytes(64)
    p.write_bytes(bytes(b))


# name -> (how to make the image, how to make the label, expected finding kind, text in the message)
CATALOGUE = {
    'truncated_gzip': ('trunc', 'ok', 'unreadable', 'truncated or corrupt'),
    'corrupt_gzip': ('corrupt', 'ok', 'unreadable', 'truncated or corrupt'),
    'zero_byte': ('zero', 'ok', 'unreadable', 'empty (0 bytes)'),
    'nan_voxels': ('nan', 'ok', 'nonfinite', 'NaN/Inf'),
    'inf_voxels': ('inf', 'ok', 'nonfinite', 'NaN/Inf'),
    'four_d_image': ('4d', 'ok', 'wrong_ndim', 'channels'),
    'label_values_outside_classes': ('ok', 'values', 'label_values', 'not declared classes'),
    'shape_mismatch': ('ok', 'shape', 'shape_mismatch', 'differs from image shape'),
    'affine_mismatch': ('ok', 'affine', 'affine_mismatch', 'affine differs'),
    'non_integer_label': ('ok', 'frac', 'label_values', 'non-integer'),
    'multi_channel_label': ('ok', '4d', 'wrong_ndim', 'label has 2 channels'),
}


@pytest.fixture(scope='module')
def bad_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp('bad') / 'Task99_Bad'
    (root / 'imagesTr').mkdir(parents=True)
    (root / 'labelsTr').mkdir()
    rng = np.random.default_rng(0)
    training = []
    good = write_nifti(_img(rng), AFF, root / 'imagesTr/good0.nii.gz').read_bytes()
    for name in ['good0', 'good1', 'good2', *CATALOGUE, 'empty_label', 'dup']:
        ip, lp = root / f'imagesTr/{name}.nii.gz', root / f'labelsTr/{name}.nii.gz'
        how_i, how_l = CATALOGUE.get(name, ('ok', 'empty' if name == 'empty_label' else 'ok'))[:2]
        img = _img(rng)
        if how_i == 'ok': write_nifti(img, AFF, ip)
        elif how_i == 'trunc': ip.write_bytes(good[:len(good) * 2 // 3])
        elif how_i == 'corrupt': _corrupt_gzip(ip, good)
        elif how_i == 'zero': ip.write_bytes(b'')
        elif how_i in ('nan', 'inf'):
            img[1, 2, 3] = np.nan if how_i == 'nan' else np.inf
            write_nifti(img, AFF, ip)
        elif how_i == '4d': write_nifti(np.stack([img, img], -1), AFF, ip)
        lab = _lab()
        if how_l == 'ok': write_nifti(lab, AFF, lp)
        elif how_l == 'empty': write_nifti(np.zeros(SHAPE, np.uint8), AFF, lp)
        elif how_l == 'values':
            lab[0, 0, 0] = 5
            write_nifti(lab, AFF, lp)
        elif how_l == 'shape': write_nifti(np.zeros((10, 12, 9), np.uint8), AFF, lp)
        elif how_l == 'affine': write_nifti(lab, make_affine((1., 1., 1.2)), lp)
        elif how_l == 'frac': write_nifti(lab.astype(np.float32) * 0.5, AFF, lp)
        elif how_l == '4d': write_nifti(np.stack([lab, lab], -1), AFF, lp)
        training.append({'image': f'./imagesTr/{name}.nii.gz', 'label': f'./labelsTr/{name}.nii.gz'})
    training.append(dict(training[-1]))                                   # duplicate id
    training.append({'image': '../../etc/passwd', 'label': './labelsTr/good1.nii.gz'})   # malicious path
    (root / 'imagesTr' / 'notes.txt').write_text('not an image')  # wrong extension / stray file
    meta = {'name': 'bad', 'labels': {'0': 'background', '1': 'a', '2': 'b'}, 'modality': {'0': 'MRI'},
            'training': training}
    (root / 'dataset.json').write_text(json.dumps(meta))
    return root


def test_audit_records_every_bad_input(bad_dataset, tmp_path):
    segcore('audit', bad_dataset, '--json', tmp_path / 'a.json', '--quiet')
    rep = read_json(tmp_path / 'a.json')
    kinds = {(f['case'], f['kind']) for f in rep['findings']}
    expected = {(name, kind) for name, (_, _, kind, _) in CATALOGUE.items()}
    expected |= {('empty_label', 'empty_label'), ('dup', 'duplicate_id'), ('passwd', 'path_outside_root'),
                 (None, 'non_image_file')}
    passed = expected & kinds
    from conftest import record_count
    record_count('bad-input catalogue (audit)', len(expected), len(passed))
    assert passed == expected, expected - kinds
    for name, (_, _, kind, text) in CATALOGUE.items():
        f = next(f for f in rep['findings'] if f['case'] == name and f['kind'] == kind)
        assert text in f['message'] and f['file'] and f['severity'] == 'error', f
    assert rep['usable_pairs'] == 4           # good0-2 and the empty label (a warning, not an error)


def test_loaders_raise_naming_the_file(bad_dataset):
    idx = discover(bad_dataset)
    n = 0
    for name, (_, how_l, kind, text) in CATALOGUE.items():
        with pytest.raises(DataError) as e:
            load_case(idx.case(name), idx)
        assert e.value.kind == kind and text in str(e.value), str(e.value)
        assert name in str(e.value.path)
        n += 1
    from conftest import record_count
    record_count('bad-input catalogue (loaders)', len(CATALOGUE), n)
    assert load_case(idx.case('good1'), idx).label.max() == 2


def test_2d_where_3d_expected(tmp_path):
    root = tmp_path / 'ds'
    write_nifti(np.ones((10, 12), np.float32), AFF, root / 'images/flat.nii.gz')
    write_nifti(np.ones((10, 12), np.uint8), AFF, root / 'labels/flat.nii.gz')
    segcore('audit', root, '--expect-3d', '--json', tmp_path / 'a.json', '--quiet')
    f = [f for f in read_json(tmp_path / 'a.json')['findings'] if f['kind'] == 'wrong_ndim']
    assert f and '2D image' in f[0]['message'] and f[0]['file'] == 'images/flat.nii.gz'


def test_missing_folder_is_a_clear_error(tmp_path):
    r = segcore('audit', tmp_path / 'nope', check=False)
    assert r.returncode == 2 and 'dataset folder does not exist' in r.stderr and 'Traceback' not in r.stderr


def test_unrecognised_layout_is_a_clear_error(tmp_path):
    (tmp_path / 'x.txt').write_text('hello')
    r = segcore('audit', tmp_path, check=False)
    assert r.returncode == 2 and 'cannot recognise the dataset layout' in r.stderr
