"""Multi-modal brain tumour (BraTS layout): the four-channel phantom, labels {0, 1, 2, 4} trained as contiguous
classes and written back, and region evaluation (whole tumour, tumour core, enhancing tumour)."""
import numpy as np
import pytest
from conftest import segcore, read_json
from segcore.data import discover
from segcore.io import read_image

MODS = ['t1n', 't1c', 't2w', 't2f']


@pytest.fixture(scope='module')
def brats(tmp_path_factory):
    "A 6-case BraTS phantom written by the CLI (read-only for the tests: copy it to change it)."
    out = tmp_path_factory.mktemp('brats') / 'data'
    r = segcore('phantom', out, '--kind', 'brats', '--n', '6', '--seed', '1')
    assert 'BraTS' in r.stdout and 'synthetic' in r.stdout
    return out


def test_phantom_layout_audit_clean(brats, tmp_path):
    idx = discover(brats)
    assert idx.layout == 'multimodal' and idx.channel_names == MODS and idx.synthetic
    assert idx.classes == {0: 'background', 1: 'necrotic tumour core', 2: 'peritumoral oedema', 4: 'enhancing tumour'}
    assert [c.case_id for c in idx.labelled] == [f'phantom_{i:03d}' for i in range(6)]
    c = idx.labelled[0]
    assert [p.name for p in c.images] == [f'phantom_000_{m}.nii.gz' for m in MODS]
    assert sorted(np.unique(read_image(c.label).array).tolist()) == [0, 1, 2, 4]
    segcore('audit', brats, '--json', tmp_path / 'a.json')
    rep = read_json(tmp_path / 'a.json')
    assert rep['usable_pairs'] == 6 and rep['findings'] == [] and rep['synthetic'] and rep['layout'] == 'multimodal'


def test_missing_modality_is_a_finding(brats, tmp_path):
    import shutil
    data = tmp_path / 'd'
    shutil.copytree(brats, data)
    (data / 'phantom_002' / 'phantom_002_t2f.nii.gz').unlink()
    r = segcore('audit', data, '--json', tmp_path / 'a.json', check=False)
    assert 'Traceback' not in r.stderr
    rep = read_json(tmp_path / 'a.json')
    errs = [f for f in rep['findings'] if f['severity'] == 'error']
    assert rep['usable_pairs'] == 5 and len(errs) == 1
    assert errs[0]['case'] == 'phantom_002' and errs[0]['file'] == 'phantom_002/phantom_002_t2f.nii.gz'
    assert 'missing channel(s) t2f' in errs[0]['message']
