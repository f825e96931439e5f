"""Bad-input catalogue: every problem yields an audit finding (and no crash, no hang) and a loader error that
names the file and the problem. Careless and hostile files alike: truncated or corrupt data, FIFOs and devices named
like images, links leaving the dataset, headers that name other files or lie about their size, degenerate affines,
odd voxel types, malformed dataset.json fields. The catalogue sizes and pass counts are printed."""
import gzip, json, os, socket, tracemalloc, zlib
import nibabel as nib
import numpy as np
import pytest
from conftest import segcore, read_json, record_count
from segcore.core import DataError
from segcore.io import write_nifti, make_affine, read_nifti, read_image
from segcore.data import discover, load_case, Case

AFF = make_affine((1., 1., 1.))
SHAPE = (10, 12, 8)
RGB = [('R', 'u1'), ('G', 'u1'), ('B', 'u1')]


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


def _raw_nifti(p, shape=SHAPE, data=b'', gz=True, dtype=np.float32, **fields):
    "A NIfTI file written byte by byte, so that its header can say what a writer would refuse to write."
    h = nib.Nifti1Header()
    h.set_data_shape(shape)
    h.set_data_dtype(dtype)
    h.set_sform(AFF, 1)
    h['vox_offset'] = 352
    for k, v in fields.items(): h[k] = v
    raw = h.binaryblock + bytes(4) + data
    p.write_bytes(gzip.compress(raw) if gz else raw)


def _gzip_bomb(p, head: bytes, extra=1 << 30):
    "`head` then `extra` zero bytes, gzip-compressed in a stream (a few MB on disk, inflating to 1 GiB more)."
    c, chunk = zlib.compressobj(1, zlib.DEFLATED, 31), bytes(1 << 24)
    with open(p, 'wb') as f:
        f.write(c.compress(head))
        for _ in range(extra // len(chunk)): f.write(c.compress(chunk))
        f.write(c.flush())


MHD = 'ObjectType = Image\nNDims = 3\nDimSize = {}\nElementType = MET_FLOAT\nElementDataFile = {}\n'


def _mhd(root, name, data_file, dims='10 12 8', spacing='1 1 1', before=''):
    text = MHD.format(dims, data_file).replace('NDims = 3\n', f'NDims = 3\nElementSpacing = {spacing}\n')
    text = text.replace('ElementDataFile', before + 'ElementDataFile')
    (root / f'imagesTr/{name}.mhd').write_text(text)
    return f'./imagesTr/{name}.mhd'


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
    # files that are not what they claim
    'fifo_image': ('fifo', 'ok', 'not_regular_file', 'is a FIFO (named pipe), not a regular file'),
    'gzip_bomb': ('bomb', 'ok', 'size_mismatch', 'more than 64 KiB longer than the header claims'),
    'short_stream': ('short', 'ok', 'unreadable', 'shorter than the header claims (3484 of 4192 bytes)'),
    'trailing_bytes': ('long_nii', 'ok', 'size_mismatch', '3 bytes longer than the header claims'),
    'too_many_voxels': ('huge', 'ok', 'too_large', '4096×4096×4096 = 68719476736 voxels, above the limit'),
    'no_voxels': ('novox', 'ok', 'empty_image', 'header declares no voxels (shape 0×12×8)'),
    'bit_voxels': ('bits', 'ok', 'unsupported_dtype', 'voxel type of 0 bytes'),
    'unknown_voxel_type': ('dtype9999', 'ok', 'unsupported_dtype', 'unknown voxel type (code 9999)'),
    'analyze_not_nifti': ('analyze', 'ok', 'unreadable', "not a single-file NIfTI (magic b'\\x00\\x00\\x00'"),
    'socket_image': ('socket', 'ok', 'not_regular_file', 'is a socket, not a regular file'),
    'mhd_etc_passwd': ('mhd_passwd', 'ok', 'path_outside_root', "data file '/etc/passwd' lies outside the header"),
    'mhd_outside_folder': ('mhd_up', 'ok', 'path_outside_root', "data file '../mhd_outside_folder.raw' lies outside"),
    'mhd_list': ('mhd_list', 'ok', 'unsupported_data_file', 'a list or a numbered pattern of files'),
    'mhd_colon_separator': ('mhd_colon', 'ok', 'path_outside_root', "data file '/etc/passwd' lies outside"),
    'mhd_swallowed_line': ('mhd_swallow', 'ok', 'path_outside_root', "data file '/etc/passwd' lies outside"),
    'mhd_pattern': ('mhd_pattern', 'ok', 'unsupported_data_file', 'a list or a numbered pattern of files'),
    'mhd_fifo_data': ('mhd_fifo', 'ok', 'not_regular_file', 'data file of mhd_fifo_data.mhd: is a FIFO'),
    'mhd_data_too_long': ('mhd_long', 'ok', 'size_mismatch', 'the data file mhd_data_too_long.raw is 4 bytes longer'),
    'mhd_data_too_short': ('mhd_short', 'ok', 'unreadable', 'data file mhd_data_too_short.raw is shorter'),
    'mhd_huge_dims': ('mhd_huge', 'ok', 'too_large', 'above the limit'),
    'mhd_zero_spacing': ('mhd_sp0', 'ok', 'degenerate_affine', 'header declares voxel spacing 0 1 1'),
    'mha_compressed_bomb': ('mha_bomb', 'ok', 'size_mismatch', 'decompressed data is more than 64 KiB longer'),
    'nrrd_gzip_bomb': ('nrrd_bomb', 'ok', 'size_mismatch', 'decompressed data is more than 64 KiB longer'),
    'nrrd_etc_passwd': ('nhdr_passwd', 'ok', 'path_outside_root', "data file '/etc/passwd' lies outside the header"),
    'nrrd_list': ('nhdr_list', 'ok', 'unsupported_data_file', 'a list or a numbered pattern of files'),
    # degenerate grids and odd voxel types
    'zero_spacing': ('zerosp', 'ok', 'degenerate_affine', 'zero voxel spacing along axis 0'),
    'nan_affine': ('nanaff', 'ok', 'degenerate_affine', 'affine holds NaN/Inf'),
    'singular_direction': ('singular', 'ok', 'degenerate_affine', 'singular direction matrix'),
    'complex_voxels': ('complex', 'ok', 'unsupported_dtype', 'complex voxel values (complex64)'),
    'rgb_voxels': ('rgb', 'ok', 'unsupported_dtype', 'RGB/vector voxels (R, G, B)'),
    'beyond_float32': ('f64big', 'ok', 'nonfinite', 'voxel values beyond the float32 range'),
    'complex_label': ('ok', 'complex', 'unsupported_dtype', 'complex voxel values (complex128)'),
}

# problems found while discovering the dataset (no case is built from them): (case or None, kind)
DISCOVERY = {('empty_label', 'empty_label'), ('dup', 'duplicate_id'), ('passwd', 'path_outside_root'),
             (None, 'non_image_file'), ('dev_zero', 'path_outside_root'), ('passwd_label', 'path_outside_root'),
             ('unlisted_fifo', 'not_regular_file'), ('dangling', 'missing'), (None, 'path_outside_root'),
             (None, 'bad_dataset_json'), ('bad_patient', 'bad_dataset_json')}


def _image(root, name, how, rng, good):
    "Write the image of catalogue case `name` made `how`; returns its path as dataset.json lists it."
    ip, img = root / f'imagesTr/{name}.nii.gz', _img(rng)
    exact = nib.Nifti1Image(img, AFF).to_bytes()
    if how == 'ok': write_nifti(img, AFF, ip)
    elif how == 'trunc': ip.write_bytes(good[:len(good) * 2 // 3])
    elif how == 'corrupt': _corrupt_gzip(ip, good)
    elif how == 'zero': ip.write_bytes(b'')
    elif how in ('nan', 'inf'):
        img[1, 2, 3] = np.nan if how == 'nan' else np.inf
        write_nifti(img, AFF, ip)
    elif how == '4d': write_nifti(np.stack([img, img], -1), AFF, ip)
    elif how == 'fifo': os.mkfifo(ip)
    elif how == 'bomb': _gzip_bomb(ip, exact)
    elif how == 'short': ip.write_bytes(gzip.compress(exact[:-708]))
    elif how == 'long_nii':
        (root / f'imagesTr/{name}.nii').write_bytes(exact + b'abc')
        return f'./imagesTr/{name}.nii'
    elif how == 'huge': _raw_nifti(ip, (4096, 4096, 4096), bytes(100))
    elif how == 'novox': _raw_nifti(ip, (0, 12, 8))
    elif how == 'bits': _raw_nifti(ip, data=bytes(120), datatype=1, bitpix=1)
    elif how == 'dtype9999': _raw_nifti(ip, data=img.tobytes('F'), datatype=9999)
    elif how == 'analyze':
        h = nib.AnalyzeHeader()
        h.set_data_shape(SHAPE)
        h.set_data_dtype(np.float32)
        ip.write_bytes(gzip.compress(h.binaryblock + bytes(4) + img.tobytes('F')))
    elif how == 'socket': socket.socket(socket.AF_UNIX).bind(str(ip))
    elif how == 'f64big': write_nifti(np.full(SHAPE, 1e300), AFF, ip)
    elif how == 'zerosp': _raw_nifti(ip, data=img.tobytes('F'), srow_x=[0, 0, 0, 0])
    elif how == 'nanaff': _raw_nifti(ip, data=img.tobytes('F'), srow_y=[0, np.nan, 0, 0])
    elif how == 'singular': _raw_nifti(ip, data=img.tobytes('F'), srow_x=[1, 1, 0, 0], srow_y=[1, 1, 0, 0])
    elif how == 'complex': nib.save(nib.Nifti1Image(img.astype(np.complex64), AFF), ip)
    elif how == 'rgb': nib.save(nib.Nifti1Image(np.zeros(SHAPE, RGB), AFF), ip)
    else: return _detached(root, name, how, img)
    return f'./imagesTr/{name}.nii.gz'


def _detached(root, name, how, img):
    "MetaImage and NRRD headers whose data file is hostile."
    raw = np.ascontiguousarray(img.transpose(2, 1, 0)).tobytes()
    if how == 'mhd_passwd': return _mhd(root, name, '/etc/passwd')
    if how == 'mhd_up':
        (root / f'{name}.raw').write_bytes(raw)
        return _mhd(root, name, f'../{name}.raw')
    if how == 'mhd_list': return _mhd(root, name, 'LIST')
    if how in ('mhd_colon', 'mhd_swallow'):      # SimpleITK reads /etc/passwd from both headers
        (root / f'imagesTr/{name}.raw').write_bytes(raw)
        first = ('ElementDataFile : /etc/passwd\n' if how == 'mhd_colon'
                 else f'NoSeparatorHere\nElementDataFile = {name}.raw\n')
        return _mhd(root, name, '/etc/passwd' if how == 'mhd_swallow' else f'{name}.raw', before=first)
    if how == 'mhd_pattern': return _mhd(root, name, f'{name}_%03d.raw 1 8 1')
    if how == 'mhd_fifo':
        os.mkfifo(root / f'imagesTr/{name}.raw')
        return _mhd(root, name, f'{name}.raw')
    if how in ('mhd_long', 'mhd_short'):
        (root / f'imagesTr/{name}.raw').write_bytes(raw + bytes(4) if how == 'mhd_long' else raw[:-4])
        return _mhd(root, name, f'{name}.raw')
    if how == 'mhd_sp0': return _mhd(root, name, 'LOCAL', spacing='0 1 1')
    if how == 'mha_bomb':
        (root / f'imagesTr/{name}.mha').write_bytes(
            MHD.format('10 12 8', 'LOCAL').replace('Element', 'CompressedData = True\nElement', 1).encode()
            + zlib.compress(raw + bytes(8 << 20), 9))
        return f'./imagesTr/{name}.mha'
    if how == 'nrrd_bomb':
        head = b'NRRD0004\ntype: float\ndimension: 3\nsizes: 10 12 8\nendian: little\nencoding: gzip\n\n'
        (root / f'imagesTr/{name}.nrrd').write_bytes(head + gzip.compress(raw + bytes(8 << 20)))
        return f'./imagesTr/{name}.nrrd'
    if how == 'mhd_huge':
        (root / f'imagesTr/{name}.raw').write_bytes(raw)
        return _mhd(root, name, f'{name}.raw', dims='100000 100000 100000')
    data = '/etc/passwd' if how == 'nhdr_passwd' else 'LIST'
    (root / f'imagesTr/{name}.nhdr').write_text('NRRD0004\ntype: float\ndimension: 3\nsizes: 10 12 8\n'
                                                f'encoding: raw\ndata file: {data}\n')
    return f'./imagesTr/{name}.nhdr'


def _label(lp, how):
    lab = _lab()
    if how == 'ok': write_nifti(lab, AFF, lp)
    elif how == 'empty': write_nifti(np.zeros(SHAPE, np.uint8), AFF, lp)
    elif how == 'values':
        lab[0, 0, 0] = 5
        write_nifti(lab, AFF, lp)
    elif how == 'shape': write_nifti(np.zeros((10, 12, 9), np.uint8), AFF, lp)
    elif how == 'affine': write_nifti(lab, make_affine((1., 1., 1.2)), lp)
    elif how == 'frac': write_nifti(lab.astype(np.float32) * 0.5, AFF, lp)
    elif how == '4d': write_nifti(np.stack([lab, lab], -1), AFF, lp)
    elif how == 'complex': nib.save(nib.Nifti1Image(lab.astype(np.complex128), AFF), lp)


def _hostile_discovery(root, outside, training):
    "Entries that discovery refuses: links leaving the folder, special files, malformed training entries."
    write_nifti(_lab(), AFF, root / 'labelsTr/dev_zero.nii.gz')
    os.symlink('/dev/zero', root / 'imagesTr/dev_zero.nii.gz')
    os.symlink('/etc/passwd', root / 'labelsTr/passwd_label.nii.gz')
    write_nifti(_img(np.random.default_rng(1)), AFF, root / 'imagesTr/passwd_label.nii.gz')
    os.mkfifo(root / 'imagesTr/unlisted_fifo.nii.gz')
    os.symlink(root / 'imagesTr/gone.nii.gz', root / 'imagesTr/dangling.nii.gz')
    (outside / 'elsewhere').mkdir()
    write_nifti(_lab(), AFF, outside / 'elsewhere/x.nii.gz')
    os.symlink(outside / 'elsewhere', root / 'labelsTr/linked')
    write_nifti(_img(np.random.default_rng(2)), AFF, root / 'imagesTr/bad_patient.nii.gz')
    write_nifti(_lab(), AFF, root / 'labelsTr/bad_patient.nii.gz')
    training += [{'image': f'./imagesTr/{n}.nii.gz', 'label': f'./labelsTr/{n}.nii.gz'}
                 for n in ('dev_zero', 'passwd_label')]
    training += ['./imagesTr/good1.nii.gz', {'image': 7, 'label': './labelsTr/good1.nii.gz'},
                 {'image': './imagesTr/bad_patient.nii.gz', 'label': './labelsTr/bad_patient.nii.gz',
                  'patient': {'name': 'x'}}]


@pytest.fixture(scope='module')
def bad_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp('bad') / 'Task99_Bad'
    (root / 'imagesTr').mkdir(parents=True)
    (root / 'labelsTr').mkdir()
    rng = np.random.default_rng(0)
    training = []
    good = write_nifti(_img(rng), AFF, root / 'imagesTr/good0.nii.gz').read_bytes()
    for name in ['good0', 'good1', 'good2', *CATALOGUE, 'empty_label', 'dup']:
        how_i, how_l = CATALOGUE.get(name, ('ok', 'empty' if name == 'empty_label' else 'ok'))[:2]
        image = _image(root, name, how_i, rng, good)
        _label(root / f'labelsTr/{name}.nii.gz', how_l)
        training.append({'image': image, 'label': f'./labelsTr/{name}.nii.gz'})
    training.append(dict(training[-1]))                                   # duplicate id
    training.append({'image': '../../etc/passwd', 'label': './labelsTr/good1.nii.gz'})   # malicious path
    (root / 'imagesTr' / 'notes.txt').write_text('not an image')  # wrong extension / stray file
    _hostile_discovery(root, tmp_path_factory.mktemp('outside'), training)
    meta = {'name': 'bad', 'labels': {'0': 'background', '1': 'a', '2': 'b'}, 'modality': {'0': 'MRI'},
            'training': training}
    (root / 'dataset.json').write_text(json.dumps(meta))
    return root


def test_audit_records_every_bad_input(bad_dataset, tmp_path):
    r = segcore('audit', bad_dataset, '--json', tmp_path / 'a.json', '--quiet')
    assert 'Traceback' not in r.stderr
    rep = read_json(tmp_path / 'a.json')
    kinds = {(f['case'], f['kind']) for f in rep['findings']}
    expected = {(name, kind) for name, (_, _, kind, _) in CATALOGUE.items()} | DISCOVERY
    passed = expected & kinds
    record_count('bad-input catalogue (audit)', len(expected), len(passed))
    assert passed == expected, expected - kinds
    for name, (_, _, kind, text) in CATALOGUE.items():
        f = next(f for f in rep['findings'] if f['case'] == name and f['kind'] == kind)
        assert text in f['message'] and f['file'] and f['severity'] == 'error', f
    assert rep['usable_pairs'] == 4           # good0-2 and the empty label (a warning, not an error)
    assert rep['data']['files'] > 0 and rep['data']['kind'] == 'content'


def test_loaders_raise_naming_the_file(bad_dataset):
    idx = discover(bad_dataset)
    n = 0
    for name, (_, how_l, kind, text) in CATALOGUE.items():
        with pytest.raises(DataError) as e:
            load_case(idx.case(name), idx)
        assert e.value.kind == kind and text in str(e.value), str(e.value)
        assert name in str(e.value.path)
        n += 1
    record_count('bad-input catalogue (loaders)', len(CATALOGUE), n)
    assert load_case(idx.case('good1'), idx).label.max() == 2


def test_gzip_bomb_is_read_in_bounded_memory(bad_dataset):
    "A few MB of .nii.gz inflating to 1 GiB past its header costs no more memory than the header justifies."
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match='more than 64 KiB longer'):
            read_nifti(bad_dataset / 'imagesTr/gzip_bomb.nii.gz')
        peak = tracemalloc.get_traced_memory()[1]
    finally: tracemalloc.stop()
    assert (bad_dataset / 'imagesTr/gzip_bomb.nii.gz').stat().st_size < 8 << 20 and peak < 4 << 20, peak


def _msd(root, **meta):
    "A small valid MSD dataset whose dataset.json gets the fields `meta` (None: no dataset.json written)."
    (root / 'imagesTr').mkdir(parents=True)
    (root / 'labelsTr').mkdir()
    rng = np.random.default_rng(0)
    training = []
    for i in range(3):
        write_nifti(_img(rng), AFF, root / f'imagesTr/c{i}.nii.gz')
        write_nifti(_lab(), AFF, root / f'labelsTr/c{i}.nii.gz')
        training.append({'image': f'./imagesTr/c{i}.nii.gz', 'label': f'./labelsTr/c{i}.nii.gz', 'patient': f'p{i}'})
    base = {'name': 'ok', 'labels': {'0': 'background', '1': 'a', '2': 'b'}, 'modality': {'0': 'MRI'},
            'training': training}
    (root / 'dataset.json').write_text(json.dumps({**base, **meta}, allow_nan=True))
    return root


def _entries(**kw): return [{'image': f'./imagesTr/c{i}.nii.gz', 'label': f'./labelsTr/c{i}.nii.gz', **kw}
                            for i in range(3)]


def _replace(text):
    def write(root): (root / 'dataset.json').write_bytes(text)
    return write


def _fifo(root):
    (root / 'dataset.json').unlink()
    os.mkfifo(root / 'dataset.json')


def _link_out(root):
    (root / 'dataset.json').unlink()
    os.symlink('/etc/passwd', root / 'dataset.json')


# name -> (dataset.json fields or a function changing the folder, expected kind, text in the message, usable pairs)
JSON_CATALOGUE = {
    'labels_names_both_sides': ({'labels': {'background': 'zero', 'tumour': 'one'}}, 'bad_dataset_json',
                                "'background': 'zero'", 3),
    'labels_not_an_object': ({'labels': ['background', 'a']}, 'bad_dataset_json', 'labels must be an object', 3),
    'labels_bool_value': ({'labels': {'0': 'bg', 'a': True}}, 'bad_dataset_json', 'are neither', 3),
    'labels_value_out_of_range': ({'labels': {'0': 'bg', '1000000000': 'a'}}, 'bad_dataset_json', 'are neither', 3),
    'labels_nan_value': ({'labels': {'bg': 0, 'a': float('nan')}}, 'bad_dataset_json', 'are neither', 3),
    'modality_keys_not_integers': ({'modality': {'T1': 'MRI'}}, 'bad_dataset_json', 'modality needs the channel '
                                                                                    'numbers', 3),
    'channel_names_not_an_object': ({'channel_names': 'T1'}, 'bad_dataset_json', 'channel_names must be an object', 3),
    'training_not_a_list': ({'training': {'image': 'x'}}, 'bad_dataset_json', 'training must be a list', 3),
    'training_entry_string': ({'training': _entries()[:2] + ['./imagesTr/c2.nii.gz']}, 'bad_dataset_json',
                              'training entry 2 is not an', 2),
    'training_image_not_a_string': ({'training': _entries()[:2] + [{'image': ['a', 'b']}]}, 'bad_dataset_json',
                                    'training entry 2: image is not a path (list', 2),
    'training_label_not_a_string': ({'training': _entries()[:2] + [{'image': './imagesTr/c2.nii.gz', 'label': 3}]},
                                    'bad_dataset_json', 'training entry 2: label is not a path (int 3)', 2),
    'training_path_nul_byte': ({'training': _entries()[:2] + [{'image': './imagesTr/c\0.nii.gz'}]},
                               'bad_dataset_json', 'unusable image path', 2),
    'training_path_too_long_name': ({'training': _entries()[:2] + [{'image': 'x' * 300 + '.nii.gz'}]},
                                    'missing_file', 'listed in dataset.json but does not exist', 2),
    'patient_not_a_name': ({'training': _entries(patient=[1, 2])}, 'bad_dataset_json', 'is not a name or a number', 0),
    'name_not_a_string': ({'name': {'x': 1}}, 'bad_dataset_json', 'name must be a string', 3),
    'top_level_list': (_replace(b'[1, 2]'), 'bad_dataset_json', 'top level is not an object', 3),
    'not_json': (_replace(b'\xff\xfe{'), 'bad_dataset_json', 'cannot be parsed', 3),
    'deeply_nested': (_replace(b'[' * 100000 + b']' * 100000), 'bad_dataset_json', 'cannot be parsed', 3),
    'huge_file': (_replace(b' ' * (70 << 20) + b'{}'), 'bad_dataset_json', 'above the 64 MiB read limit', 3),
    'fifo': (_fifo, 'bad_dataset_json', 'is a FIFO (named pipe)', 3),
    'link_outside': (_link_out, 'path_outside_root', 'resolves to /etc/passwd, outside the folder', 3),
}


def test_malformed_dataset_json_fields_are_findings(tmp_path):
    "Each malformed field is a finding naming dataset.json, and the audit of the cases goes on."
    from segcore.audit import audit
    n = 0
    for name, (change, kind, text, usable) in JSON_CATALOGUE.items():
        root = _msd(tmp_path / name, **(change if isinstance(change, dict) else {}))
        if callable(change): change(root)
        rep = audit(root, progress=False)
        f = [f for f in rep['findings'] if f['kind'] == kind and text in f['message']]
        assert f and f[0]['file'].endswith('dataset.json') if kind != 'missing_file' else f, (name, rep['findings'])
        assert rep['usable_pairs'] == usable, (name, rep['usable_pairs'], rep['findings'])
        n += 1
    record_count('bad-input catalogue (dataset.json)', len(JSON_CATALOGUE), n)


def test_malformed_dataset_json_through_the_cli(tmp_path):
    root = _msd(tmp_path / 'ds', labels={'background': 'zero'}, modality={'T1': 'MRI'}, name=3,
                training=_entries()[:1] + ['x', {'image': 5}, {**_entries()[2], 'patient': {'a': 1}}])
    r = segcore('audit', root, '--json', tmp_path / 'a.json', '--quiet')
    rep = read_json(tmp_path / 'a.json')
    assert 'Traceback' not in r.stderr and rep['usable_pairs'] == 1
    assert rep['findings_by_kind']['bad_dataset_json'] == 6 and rep['classes'] is None


def test_internal_error_is_a_finding_and_the_audit_goes_on(bad_dataset, monkeypatch):
    import segcore.audit as sa, segcore.data as sd
    real = sd._check_label
    def flaky(case, ref, classes):
        if case.case_id == 'good1': raise KeyError('a bug in a check')
        return real(case, ref, classes)
    monkeypatch.setattr(sd, '_check_label', flaky)
    rep = sa.audit(bad_dataset, progress=False)
    f = [f for f in rep['findings'] if f['kind'] == 'internal_error']
    assert [(x['case'], x['file']) for x in f] == [('good1', 'imagesTr/good1.nii.gz')]
    assert "KeyError: 'a bug in a check'" in f[0]['message'] and rep['usable_pairs'] == 3
    with pytest.raises(DataError) as e:
        load_case(discover(bad_dataset).case('good1'))
    assert e.value.kind == 'internal_error' and 'good1' in e.value.path


def test_odd_voxel_types_of_2d_images(tmp_path, monkeypatch):
    "A bool image is usable with a warning, a bool label is read as 0/1; a 2D image above the voxel limit is refused."
    from PIL import Image
    from segcore.audit import audit
    for i in range(2):
        Image.fromarray(np.eye(10, 12, dtype=bool)).save(tmp_path / f'les{i}.png')
        Image.fromarray(np.eye(10, 12, dtype=bool)).save(tmp_path / f'les{i}_mask.png')
    rep = audit(tmp_path, progress=False)
    kinds = {(f['kind'], f['severity']) for f in rep['findings']}
    assert kinds == {('image_dtype', 'warning'), ('label_dtype', 'info')}, kinds
    assert rep['usable_pairs'] == 2 and rep['cases'][0]['label_values'] == {0: 110, 1: 10}
    monkeypatch.setenv('SEGCORE_MAX_VOXELS', '100')
    with pytest.raises(DataError, match='10×12×1 = 120 voxels, above the limit of 100'):
        read_image(tmp_path / 'les0.png')


def test_2d_where_3d_expected(tmp_path):
    root = tmp_path / 'ds'
    write_nifti(np.ones((10, 12), np.float32), AFF, root / 'images/flat.nii.gz')
    write_nifti(np.ones((10, 12), np.uint8), AFF, root / 'labels/flat.nii.gz')
    segcore('audit', root, '--expect-3d', '--json', tmp_path / 'a.json', '--quiet')
    f = [f for f in read_json(tmp_path / 'a.json')['findings'] if f['kind'] == 'wrong_ndim']
    assert f and '2D image' in f[0]['message'] and f[0]['file'] == 'images/flat.nii.gz'


def test_evaluate_folders_skips_hostile_files(tmp_path):
    "`segcore evaluate --pred --labels` scores the good pairs and lists each hostile file as skipped, with why."
    pred, ref = tmp_path / 'pred', tmp_path / 'ref'
    for d in (pred, ref):
        write_nifti(_lab(), AFF, d / 'good.nii.gz')
        write_nifti(_lab(), AFF, d / 'flat.nii.gz')
        write_nifti(_lab(), AFF, d / 'leak.nii.gz')
    _raw_nifti(ref / 'flat.nii.gz', data=_lab().astype(np.float32).tobytes('F'), srow_x=[0, 0, 0, 0])
    (ref / 'leak.nii.gz').unlink()
    (ref / 'leak.mhd').write_text(MHD.format('10 12 8', '/etc/passwd'))
    r = segcore('evaluate', '--pred', pred, '--labels', ref, '--json', tmp_path / 'e.json')
    out = read_json(tmp_path / 'e.json')
    assert 'Traceback' not in r.stderr and {c['case'] for c in out['cases']} == {'good'}
    assert sorted((s['case'], s['problem'].split(' (')[0]) for s in out['skipped']) == [
        ('flat', 'zero voxel spacing along axis 0'),
        ('leak', "data file '/etc/passwd' lies outside the header's folder")]


def test_missing_folder_is_a_clear_error(tmp_path):
    r = segcore('audit', tmp_path / 'nope', check=False)
    assert r.returncode == 2 and 'dataset folder does not exist' in r.stderr and 'Traceback' not in r.stderr


def test_unrecognised_layout_is_a_clear_error(tmp_path):
    (tmp_path / 'x.txt').write_text('hello')
    r = segcore('audit', tmp_path, check=False)
    assert r.returncode == 2 and 'cannot recognise the dataset layout' in r.stderr


def test_named_layout_without_its_folders_is_a_clear_error(tmp_path):
    write_nifti(_lab(), AFF, tmp_path / 'x.nii.gz')
    for layout, msg in (('paired', 'paired layout needs an images/ folder'), ('msd', 'needs an imagesTr/ folder'),
                        ('luna16', 'file does not exist'), ('nnunet', "unknown layout 'nnunet'")):
        r = segcore('audit', tmp_path, '--layout', layout, check=False)
        assert r.returncode == 2 and msg in r.stderr and 'Traceback' not in r.stderr, r.stderr


def test_case_of_a_folder_reads_no_special_file(tmp_path):
    "A case whose image is a FIFO given directly (not found by discovery) is refused by the reader, without blocking."
    os.mkfifo(tmp_path / 'x.nii.gz')
    with pytest.raises(DataError, match='FIFO'):
        load_case(Case('x', 'x', [tmp_path / 'x.nii.gz'], None))
    os.mkfifo(tmp_path / 'scan')
    with pytest.raises(DataError, match='FIFO'):
        read_image(tmp_path / 'scan')
