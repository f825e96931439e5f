"""DICOM series faults on a copy of a real study: a missing slice and an unreadable slice are clear
errors naming the folder or file (never a silently distorted volume)."""
import shutil
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
