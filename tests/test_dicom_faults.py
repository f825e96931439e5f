"""DICOM series faults on a copy of a real study: a missing slice, an unreadable slice, a special file in the folder
and a series above the voxel limit are clear errors naming the folder or file (never a silently distorted volume,
never a hang)."""
import os, shutil
import pytest
from segcore.core import DataError
from segcore.io import read_dicom_series, read_image, dicom_files


@pytest.fixture
def study(shared_data, tmp_path):
    src = shared_data / 'hippocampus-dicom/Study1/13_HCropVolume'
    dst = tmp_path / 'series'
    shutil.copytree(src, dst)
    return dst


def _by_position(folder):
    import SimpleITK as sitk
    return list(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder)))


def test_intact_copy_reads(study):
    v = read_dicom_series(study)
    assert v.spatial_shape[2] == len(dicom_files(study))


def test_missing_slice_is_detected(study):
    files = _by_position(study)
    (study / files[len(files) // 2].split('/')[-1]).unlink()
    with pytest.raises(DataError) as e:
        read_dicom_series(study)
    assert e.value.kind == 'missing_slice' and 'missing slice' in str(e.value) and str(study) in str(e.value)


def test_missing_end_slice_is_not_a_gap(study):
    files = _by_position(study)
    (study / files[-1].split('/')[-1]).unlink()          # a shorter series is still a regular one
    assert read_dicom_series(study).spatial_shape[2] == len(files) - 1


def test_unreadable_slice_names_the_file(study):
    files = _by_position(study)
    bad = study / files[3].split('/')[-1]
    bad.write_bytes(bad.read_bytes()[:200])             # truncated slice file
    with pytest.raises(DataError) as e:
        read_image(study)
    assert e.value.kind == 'unreadable' and e.value.path == str(bad) and 'could not be read' in str(e.value)


def test_empty_folder_and_non_dicom_folder(tmp_path):
    (tmp_path / 'empty').mkdir()
    with pytest.raises(DataError, match='no DICOM files|no readable DICOM'):
        read_image(tmp_path / 'empty')


def test_special_files_in_the_folder_are_refused(study):
    "GDCM opens every file of the folder: a FIFO or a link to a device there is refused, by name, before it blocks."
    os.mkfifo(study / 'pipe.dcm')
    with pytest.raises(DataError) as e:
        read_image(study)
    assert e.value.kind == 'not_regular_file' and e.value.path == str(study / 'pipe.dcm') and 'FIFO' in str(e.value)
    (study / 'pipe.dcm').unlink()
    os.symlink('/dev/zero', study / 'zero')
    with pytest.raises(DataError, match='character device') as e:
        read_dicom_series(study)
    assert e.value.path == str(study / 'zero')


def test_series_above_the_voxel_limit_is_refused(study, monkeypatch):
    monkeypatch.setenv('SEGCORE_MAX_VOXELS', '1000')
    with pytest.raises(DataError, match='voxels, above the limit of 1000') as e:
        read_dicom_series(study)
    assert e.value.kind == 'too_large' and e.value.path == str(study)
