"""2D slice datasets: the one-folder-per-patient layout (Kaggle LGG `kaggle_3m`), `images/` + `masks/` with the
patient in the file name, RGB/RGBA/palette images and masks, a catalogue of bad 2D inputs (each an audit finding
naming the file, the good slices still usable), and datasets derived from the real hippocampus volumes."""
import csv, json
import numpy as np
import pytest
import tifffile
from PIL import Image
from conftest import record_count
from segcore.audit import audit
from segcore.core import DataError
from segcore.data import discover, detect_layout, load_case
from segcore.io import read_image, write_nifti, make_affine

PATIENTS = ('TCGA_CS_4941_19960909', 'TCGA_DU_7014_19860618')
SIZE = (16, 20)


def _mask(value=255, size=SIZE):
    m = np.zeros(size, np.uint8)
    m[4:9, 5:12] = value
    return m


def _rgb(seed, size=SIZE):
    return np.random.default_rng(seed).integers(0, 256, size + (3,), np.uint8)


def _kaggle(root, slices=(1, 2), ext='tif'):
    "Two patients, RGB slice images with 0/255 masks beside them: `PATIENT/PATIENT_k.ext` + `..._k_mask.ext`."
    for i, pat in enumerate(PATIENTS):
        (root / pat).mkdir(parents=True, exist_ok=True)
        for k in slices:
            _save(root / pat / f'{pat}_{k}.{ext}', _rgb(10 * i + k))
            _save(root / pat / f'{pat}_{k}_mask.{ext}', _mask())
    return root


def _save(path, array):
    if path.suffix == '.tif': tifffile.imwrite(path, array, photometric='rgb' if array.ndim == 3 else 'minisblack')
    else: Image.fromarray(array).save(path)


def _slice(root, k=1, mask=False, ext='tif'):
    "Path of slice `k` (or its mask) of the first patient."
    return root / PATIENTS[0] / f'{PATIENTS[0]}_{k}{"_mask" if mask else ""}.{ext}'


# ---- the layout, read as a new user would ------------------------------------------------------------------------

def test_kaggle_layout_is_found_and_every_pair_is_usable(tmp_path):
    root = _kaggle(tmp_path / 'kaggle_3m', slices=(1, 2, 10))
    assert detect_layout(root) == 'patient-slices'
    idx = discover(root)
    assert [c.case_id for c in idx.cases[:3]] == [f'{PATIENTS[0]}_{k}' for k in (1, 2, 10)]   # natural order
    assert set(idx.patients().values()) == set(PATIENTS) and idx.patients()[f'{PATIENTS[1]}_10'] == PATIENTS[1]
    lc = load_case(idx.case(f'{PATIENTS[1]}_2'), idx)
    assert lc.image.shape == (3,) + SIZE and lc.label.dtype == np.uint8
    assert sorted(np.unique(lc.label)) == [0, 1] and int(lc.label.sum()) == 35      # 0/255 read as binary
    np.testing.assert_array_equal(lc.image, np.moveaxis(_rgb(12), -1, 0).astype(np.float32))
    rep = audit(root, progress=False)
    assert rep['layout'] == 'patient-slices' and rep['usable_pairs'] == 6 and not rep['findings']
    assert {c['channels'] for c in rep['cases']} == {3}


def test_other_layouts_keep_their_detection(tmp_path):
    "BraTS folders stay multimodal, flat X + X_mask stays side by side, nested pairs whose names repeat too."
    aff = make_affine((1, 1, 1))
    for case in ('BraTS-GLI-00000-000', 'BraTS-GLI-00002-000'):
        for m in ('t1n', 't2w', 'seg'):
            write_nifti(np.zeros((4, 4, 4), np.uint8), aff, tmp_path / 'brats' / case / f'{case}-{m}.nii.gz')
    assert detect_layout(tmp_path / 'brats') == 'multimodal'
    flat = _kaggle(tmp_path / 'k')
    for p in list(flat.rglob('*.tif')): p.rename(flat / p.name)
    for p in PATIENTS: (flat / p).rmdir()
    assert detect_layout(flat) == 'paired-side-by-side' and len(discover(flat).cases) == 4
    nested = tmp_path / 'nested'
    for pat in ('A', 'B'):
        (nested / pat).mkdir(parents=True)
        _save(nested / pat / 'scan.png', _rgb(1))
        _save(nested / pat / 'scan_mask.png', _mask())
    assert detect_layout(nested) == 'paired-side-by-side'
    assert discover(nested).patients() == {'A__scan': 'A', 'B__scan': 'B'}


def test_patient_pattern_from_argument_and_dataset_json(tmp_path):
    root = tmp_path / 'flat'
    names = ('P001_slice_3', 'P001_slice_12', 'P002_slice_3', 'notes_scan')
    for d in ('images', 'masks'): (root / d).mkdir(parents=True)
    for i, n in enumerate(names):
        _save(root / 'images' / f'{n}.png', _rgb(i))
        _save(root / 'masks' / f'{n}.png', _mask())
    assert set(discover(root).patients().values()) == set(names)                     # unchanged without a pattern
    idx = discover(root, patient_pattern=r'(?P<patient>P\d+)_slice_\d+')
    assert idx.patients() == {'P001_slice_12': 'P001', 'P001_slice_3': 'P001', 'P002_slice_3': 'P002'}
    assert [(f.kind, f.file, f.severity) for f in idx.findings] == [
        ('patient_pattern_mismatch', 'images/notes_scan.png', 'error')]
    assert discover(root, patient_pattern=r'^(P\d+)').patients()['P002_slice_3'] == 'P002'     # group 1
    assert discover(root, patient_pattern=r'P\d+').patients()['P001_slice_12'] == 'P001'       # whole match
    (root / 'dataset.json').write_text(json.dumps({'patient_pattern': r'(?P<patient>P\d+)_'}))
    rep = audit(root, progress=False)
    assert {c['patient'] for c in rep['cases']} == {'P001', 'P002'} and rep['usable_pairs'] == 3
    assert [(f['kind'], f['file']) for f in rep['findings']] == [('patient_pattern_mismatch', 'images/notes_scan.png')]
    with pytest.raises(DataError, match=r"patient_pattern '\(P' is not a valid regular expression"):
        discover(root, patient_pattern='(P')
    (root / 'dataset.json').write_text(json.dumps({'patient_pattern': 7}))
    with pytest.raises(DataError, match='dataset.json: patient_pattern must be a regular expression'):
        discover(root)


def test_images_of_every_colour_kind(tmp_path):
    "RGB in PNG/TIFF/JPEG is 3 channels, grey 1, RGBA with an opaque alpha 3; palettes and TIFF planes too."
    rgb = _rgb(0)
    Image.fromarray(rgb).save(tmp_path / 'a.png')
    Image.fromarray(rgb).save(tmp_path / 'a.jpg')
    tifffile.imwrite(tmp_path / 'a.tif', rgb, photometric='rgb')
    tifffile.imwrite(tmp_path / 'planar.tif', np.moveaxis(rgb, -1, 0), photometric='rgb', planarconfig='separate')
    Image.fromarray(np.dstack([rgb, np.full(SIZE, 255, np.uint8)])).save(tmp_path / 'rgba.png')
    tifffile.imwrite(tmp_path / 'rgba.tif', np.dstack([rgb, np.full(SIZE, 255, np.uint8)]), photometric='rgb',
                     extrasamples=['unassalpha'])
    Image.fromarray(rgb[..., 0]).save(tmp_path / 'grey.png')
    Image.fromarray(rgb).convert('P').save(tmp_path / 'palette.png')
    shapes = {p.name: read_image(p).channels_first().shape for p in tmp_path.iterdir()}
    assert shapes == {'a.png': (3,) + SIZE, 'a.jpg': (3,) + SIZE, 'a.tif': (3,) + SIZE, 'planar.tif': (3,) + SIZE,
                      'rgba.png': (3,) + SIZE, 'rgba.tif': (3,) + SIZE, 'grey.png': (1,) + SIZE,
                      'palette.png': (3,) + SIZE}
    for name in ('a.tif', 'planar.tif', 'rgba.png', 'rgba.tif'):
        np.testing.assert_array_equal(read_image(tmp_path / name).array, rgb)


def test_masks_as_2d_tools_save_them(tmp_path):
    "Equal RGB(A) channels are one channel, a palette mask gives its indices, small class indices stay."
    root = _kaggle(tmp_path / 'k')
    m = _mask()
    Image.fromarray(np.dstack([m, m, m, np.full(SIZE, 255, np.uint8)])).save(_slice(root, 1, True, 'png'))
    _slice(root, 1, True).unlink()
    pal = Image.fromarray((m > 0).astype(np.uint8) * 2, mode='P')
    pal.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0])
    pal.save(_slice(root, 2, True, 'png'))
    _slice(root, 2, True).unlink()
    idx = discover(root)
    assert sorted(np.unique(load_case(idx.case(f'{PATIENTS[0]}_1'), idx).label)) == [0, 1]
    assert sorted(np.unique(load_case(idx.case(f'{PATIENTS[0]}_2'), idx).label)) == [0, 2]


# ---- the catalogue: bad 2D input is a finding naming the file, never a traceback ---------------------------------

def _mask_size(r): _save(_slice(r, 1, True), _mask(size=(12, 20)))
def _lossy_mask(r):
    m = _mask()
    m[0, :4] = (3, 128, 252, 9)
    _save(_slice(r, 1, True), m)
def _undeclared_class(r):
    (r / 'dataset.json').write_text(json.dumps({'labels': {'0': 'background', '1': 'tumour'}}))
    _save(_slice(r, 1, True), _mask(2))
def _no_mask(r): _slice(r, 1, True).unlink()
def _no_image(r): _slice(r, 1).unlink()
def _empty_folder(r): (r / 'TCGA_HT_0000_20000101').mkdir()
def _corrupt_png(r):
    b = _slice(r, 1, ext='png').read_bytes()
    _slice(r, 1, ext='png').write_bytes(b[:60] + bytes(len(b) - 60))
def _truncated_png(r):
    b = _slice(r, 1, ext='png').read_bytes()
    _slice(r, 1, ext='png').write_bytes(b[: len(b) // 2])
def _zero_byte_tiff(r): _slice(r, 1).write_bytes(b'')
def _colour_mask(r): _save(_slice(r, 1, True), np.dstack([_mask(), _mask(80), _mask()]))
def _grey_among_rgb(r): _save(_slice(r, 1), _rgb(0)[..., 0])
def _transparent_among_rgb(r):
    a = np.full(SIZE, 255, np.uint8)
    a[0, 0] = 0
    Image.fromarray(np.dstack([_rgb(0), a])).save(_slice(r, 1, ext='png'))
    _slice(r, 1).unlink()
def _same_stem_twice(r):
    for mask in (False, True): _save(r / PATIENTS[1] / _slice(r, 1, mask).name, _mask() if mask else _rgb(3))
def _stack_as_slice(r): tifffile.imwrite(_slice(r, 1), np.zeros((6,) + SIZE, np.uint8))


# name -> (how to spoil the 4-slice dataset, its format, finding kind, what the finding names, usable pairs left)
CATALOGUE = [
    ('mask_size_differs', _mask_size, 'tif', 'shape_mismatch', 'mask', 3),
    ('lossy_mask_values', _lossy_mask, 'tif', 'label_values', 'mask', 3),
    ('mask_value_not_declared', _undeclared_class, 'tif', 'label_values', 'mask', 3),
    ('image_without_mask', _no_mask, 'tif', 'image_without_label', 'image', 3),
    ('mask_without_image', _no_image, 'tif', 'label_without_image', 'mask', 3),
    ('empty_patient_folder', _empty_folder, 'tif', 'empty_patient_folder', 'folder', 4),
    ('corrupt_png', _corrupt_png, 'png', 'unreadable', 'image', 3),
    ('truncated_png', _truncated_png, 'png', 'unreadable', 'image', 3),
    ('zero_byte_tiff', _zero_byte_tiff, 'tif', 'unreadable', 'image', 3),
    ('colour_mask', _colour_mask, 'tif', 'wrong_ndim', 'mask', 3),
    ('grey_slice_among_rgb', _grey_among_rgb, 'tif', 'channel_count', 'image', 3),
    ('transparent_slice_among_rgb', _transparent_among_rgb, 'tif', 'channel_count', 'png image', 3),
    ('same_stem_in_two_patients', _same_stem_twice, 'tif', 'duplicate_id', 'image', 3),
    ('stack_saved_as_a_slice', _stack_as_slice, 'tif', 'wrong_ndim', 'image', 3),
]
PASSED = []


def _named(what, root, ext):
    "The file (or folder) a finding must name, relative to `root`: the first slice's image or mask, or a folder."
    if what == 'folder': return 'TCGA_HT_0000_20000101'
    return str(_slice(root, 1, mask=what == 'mask', ext='png' if what == 'png image' else ext).relative_to(root))


@pytest.mark.parametrize('name, spoil, ext, kind, what, usable', CATALOGUE, ids=[c[0] for c in CATALOGUE])
def test_bad_2d_input_is_a_finding_naming_the_file(tmp_path, name, spoil, ext, kind, what, usable):
    root = _kaggle(tmp_path / name, ext=ext)
    spoil(root)
    rep = audit(root, progress=False)
    hits = [f for f in rep['findings'] if f['kind'] == kind]
    assert hits, rep['findings']
    assert any(_named(what, root, ext) in (f['file'] or '') for f in hits), (hits, _named(what, root, ext))
    assert rep['usable_pairs'] == usable, rep['findings']
    assert not [f for f in rep['findings'] if f['kind'] == 'internal_error']
    if name == 'lossy_mask_values': assert '0, 3, 9, 128, 252, 255' in hits[0]['message']
    PASSED.append(name)


def test_catalogue_count():
    record_count('2D slice bad-input catalogue', len(CATALOGUE), len(PASSED))


# ---- derived datasets from the real hippocampus volumes ------------------------------------------------------------

@pytest.fixture(scope='module')
def derived(shared_data, tmp_path_factory):
    from segcore.derive import slices_dataset, mosaic_dataset
    src, out = shared_data / 'hippocampus', tmp_path_factory.mktemp('derived')
    return {'src': src,
            'slices': slices_dataset(src, out / 'slices', max_patients=3, progress=False),
            'paired': slices_dataset(src, out / 'paired', layout='paired', fmt='png', max_patients=3,
                                     only_foreground=True, progress=False),
            'mosaic': mosaic_dataset(src, out / 'mosaic', grid=(4, 5), n_images=3, progress=False)}


def test_derived_slices_audit_clean_one_patient_per_case(derived):
    first = discover(derived['src']).labelled[:3]
    n_slices = sum(read_image(c.images[0]).spatial_shape[2] for c in first)
    rep = audit(derived['slices'], progress=False)
    assert rep['layout'] == 'patient-slices' and rep['n_cases'] == rep['usable_pairs'] == n_slices
    assert {c['patient'] for c in rep['cases']} == {c.case_id for c in first}
    assert not [f for f in rep['findings'] if f['severity'] == 'error']
    assert all(set(c['label_values']) <= {0, 1} for c in rep['cases']) and rep['classes'] == {0: 'background',
                                                                                              1: 'foreground'}
    meta = json.loads((derived['slices'] / 'dataset.json').read_text())
    assert meta['description'].startswith(f'derived from {derived["src"].resolve()}: slices along axis 2')
    assert 'DERIVED DATA' in (derived['slices'] / 'DERIVED.txt').read_text()


def test_derived_slice_round_trip(derived):
    "A slice image holds the windowed slices k-1, k, k+1 of its case; its mask is the case's foreground, as 0/255."
    from segcore.derive import window_uint8
    case = discover(derived['src']).labelled[1]
    lc = load_case(case)
    vol, k = window_uint8(lc.image[0]), 10
    img = read_image(derived['slices'] / case.case_id / f'{case.case_id}_{k}.tif').array
    np.testing.assert_array_equal(img, np.stack([vol[..., k - 1], vol[..., k], vol[..., k + 1]], -1))
    mask = read_image(derived['slices'] / case.case_id / f'{case.case_id}_{k}_mask.tif').array
    np.testing.assert_array_equal(mask, (lc.label[..., k] > 0) * 255)


def test_derived_paired_variant_keeps_patients(derived):
    first = discover(derived['src']).labelled[:3]
    rep = audit(derived['paired'], progress=False)
    assert rep['layout'] == 'paired' and rep['usable_pairs'] == rep['n_cases'] > 0
    assert {c['patient'] for c in rep['cases']} == {c.case_id for c in first}
    assert all(c['label_values'].get(1, 0) > 0 for c in rep['cases'])                  # only_foreground
    assert not [f for f in rep['findings'] if f['severity'] != 'info']


def test_mosaic_tiles_equal_the_slices(derived):
    rows = list(csv.DictReader((derived['mosaic'] / 'tiles.csv').open()))
    assert len(rows) == 3 * 4 * 5
    assert sorted(p.name for p in (derived['mosaic'] / 'images').iterdir()) == [f'mosaic_000{i}.png' for i in range(3)]
    checked = 0
    for t in rows:
        folder = derived['slices'] / t['patient']
        if not folder.is_dir(): continue
        img = read_image(derived['mosaic'] / 'images' / f'mosaic_{int(t["mosaic"]):04d}.png').array
        msk = read_image(derived['mosaic'] / 'masks' / f'mosaic_{int(t["mosaic"]):04d}.png').array
        y, x, h, w = (int(t[k]) for k in ('y', 'x', 'height', 'width'))
        np.testing.assert_array_equal(img[y:y + h, x:x + w], read_image(folder / f'{t["case"]}_{t["slice"]}.tif').array)
        np.testing.assert_array_equal(msk[y:y + h, x:x + w],
                                      read_image(folder / f'{t["case"]}_{t["slice"]}_mask.tif').array)
        checked += 1
    assert checked == len(rows)
    rep = audit(derived['mosaic'], progress=False)
    assert rep['usable_pairs'] == 3 and {c['channels'] for c in rep['cases']} == {3}
    assert all(set(c['label_values']) == {0, 1} for c in rep['cases'])
