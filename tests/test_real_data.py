"""Real data from ../shared/data: the audit finds every documented quirk; readers keep geometry.
Skipped cleanly when the data are absent (a user's fresh clone)."""
import numpy as np
from conftest import segcore, read_json
from segcore.io import read_image, read_nifti, write_nifti, write_image, read_dicom_series, resample, vox2world
from segcore.data import discover, load_case


def test_audit_finds_every_documented_quirk(shared_data, tmp_path):
    r = segcore('audit', shared_data / 'hippocampus', '--json', tmp_path / 'a.json', '--html', tmp_path / 'a.html',
                '--quiet')
    rep = read_json(tmp_path / 'a.json')
    by = {(f['kind'], f['file']) for f in rep['findings']}
    assert ('image_without_label', 'images/hippocampus_118.nii.gz') in by          # an image with no label
    assert ('label_without_image', 'labels/hippocampus_010.nii.gz') in by          # labels whose image is missing,
    assert ('label_without_image', 'labels/hippocampus_281.nii.gz') in by
    assert ('geometry_outlier', 'labels/hippocampus_281.nii.gz') in by             # one with foreign geometry
    assert ('non_image_file', 'images/.DS_Store') in by                             # a stray non-image file
    assert [f['file'] for f in rep['findings'] if f['kind'] == 'geometry_outlier'] == ['labels/hippocampus_281.nii.gz']
    assert rep['usable_pairs'] == 210 and isinstance(rep['usable_pairs'], int)
    assert len(rep['cases']) == 211 and rep['layout'] == 'paired' and rep['synthetic'] is False
    assert all({'case', 'file', 'kind', 'message'} <= f.keys() for f in rep['findings'])
    assert not [f for f in rep['findings'] if f['severity'] == 'error']
    row = next(c for c in rep['cases'] if c['case'] == 'hippocampus_004')
    lab = np.asarray(read_nifti(shared_data / 'hippocampus/labels/hippocampus_004.nii.gz').array)
    assert row['shape'] == list(lab.shape) and row['spacing'] == [1.0, 1.0, 1.0] and row['orientation'] == 'RAS'
    assert row['label_values'] == {str(v): int((lab == v).sum()) for v in (0, 1, 2)}
    assert '210 usable pairs' in r.stdout
    page = (tmp_path / 'a.html').read_text()
    assert 'hippocampus_281' in page and 'SYNTHETIC' not in page


def test_nifti_round_trip_is_exact(shared_data, tmp_path):
    for name in ('images/hippocampus_004.nii.gz', 'images/hippocampus_033.nii.gz', 'labels/hippocampus_281.nii.gz'):
        v = read_image(shared_data / 'hippocampus' / name)
        w = read_image(write_image(v, tmp_path / 'x.nii.gz'))
        np.testing.assert_array_equal(w.array, v.array)
        assert w.array.dtype == v.array.dtype
        np.testing.assert_array_equal(w.affine, v.affine)


def test_resample_real_label_volume(shared_data):
    v = read_image(shared_data / 'hippocampus/labels/hippocampus_281.nii.gz')   # 512x512x94 at 0.734x0.734x5 mm
    r = resample(v, (1.5, 1.5, 2.5), is_label=True)
    expect = [int(np.round((n - 1) * s / t + 1)) for n, s, t in zip(v.spatial_shape, v.spacing, (1.5, 1.5, 2.5))]
    assert list(r.spatial_shape) == expect
    np.testing.assert_allclose(r.spacing, (1.5, 1.5, 2.5))
    np.testing.assert_allclose(r.origin, v.origin)
    assert set(np.unique(r.array)) <= set(np.unique(v.array))
    # the foreground volume in mm^3 is preserved by nearest-neighbour resampling to within a few percent
    def vol(x):
        return (x.array > 0).sum() * np.prod(x.spacing)
    assert abs(vol(r) - vol(v)) / vol(v) < 0.05


def test_dicom_series_matches_simpleitk(shared_data, tmp_path):
    import SimpleITK as sitk
    folder = shared_data / 'hippocampus-dicom/Study1/13_HCropVolume'
    v = read_dicom_series(folder)
    ref = sitk.ReadImage(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder)))
    assert v.spatial_shape == ref.GetSize() and v.meta['n_slices'] == ref.GetSize()[2]
    np.testing.assert_allclose(v.spacing, ref.GetSpacing())
    arr = sitk.GetArrayFromImage(ref)
    idx = (3, 5, 7)
    assert v.array[idx] == arr[idx[::-1]]
    lps = np.array(ref.TransformIndexToPhysicalPoint(idx))
    np.testing.assert_allclose(vox2world(v.affine, idx), lps * [-1, -1, 1], atol=1e-6)
    w = read_nifti(write_nifti(v.array, v.affine, tmp_path / 'study1.nii.gz'))   # DICOM -> NIfTI keeps anatomy
    np.testing.assert_array_equal(w.array, v.array)
    np.testing.assert_allclose(w.affine, v.affine, atol=1e-4)


def test_every_dicom_study_reads(shared_data):
    for folder in sorted((shared_data / 'hippocampus-dicom').glob('Study*/*')):
        v = read_image(folder)
        assert v.ndim == 3 and min(v.spatial_shape) > 1 and np.isfinite(v.array).all()


def test_real_case_loads_with_consistent_label(shared_data):
    idx = discover(shared_data / 'hippocampus')
    c = load_case(idx.case('hippocampus_243'), idx)        # the label stored as float32
    assert c.label.dtype == np.uint8 and set(np.unique(c.label)) == {0, 1, 2}
    assert c.image.shape[1:] == c.label.shape and c.image.dtype == np.float32
