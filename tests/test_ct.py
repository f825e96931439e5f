"""CT / LUNA16: the chest CT phantom, its audit and plan, FROC, and evaluation of a trained model with `froc`."""
import numpy as np
import pytest
from conftest import segcore, read_json
from segcore.data import discover, load_case


@pytest.fixture(scope='module')
def ct8(tmp_path_factory):
    "An 8-series chest CT phantom written through the CLI."
    out = tmp_path_factory.mktemp('ct') / 'ct8'
    r = segcore('phantom', out, '--kind', 'ct', '--n', 8)
    assert 'LUNA16' in r.stdout
    return out


def test_ct_phantom_layout_and_stamp(ct8):
    meta = read_json(ct8 / 'dataset.json')
    assert meta['synthetic'] is True and meta['modality'] == {'0': 'CT'} and (ct8 / 'SYNTHETIC.txt').is_file()
    assert sorted(p.parent.name for p in ct8.rglob('*.mhd')) == ['subset0'] * 4 + ['subset1'] * 4
    idx = discover(ct8)
    assert idx.layout == 'luna16' and idx.synthetic and len(idx.cases) == 8
    lc = load_case(idx.cases[0], idx)
    sp = lc.spacing
    assert abs(sp[2] - 2.5) < 1e-6 and 1.68 < sp[0] < 1.72 and not np.allclose(lc.affine[:3, 3], 0)
    img = lc.image[0]
    assert img.min() >= -1024 and img[0, 0, 0] < -900                # air around the body, in HU
    assert -600 < np.median(img[lc.label > 0]) < 100                 # nodules: soft tissue (or ground glass)
    assert -900 < np.median(img[(img < -600) & (img > -950)]) < -800   # lungs
    d = [n['diameter_mm'] for c in idx.cases for n in c.annotations]
    assert 3 <= min(d) and max(d) <= 30 and sum(not c.annotations for c in idx.cases) == 2
    cand = np.genfromtxt(ct8 / 'candidates.csv', delimiter=',', names=True, dtype=None, encoding='utf-8')
    assert set(cand['class']) == {0, 1} and (cand['class'] == 1).sum() == len(d)


def test_ct_phantom_audit_clean_and_plan_ct(ct8, tmp_path):
    segcore('audit', ct8, '--json', tmp_path / 'a.json', '--quiet')
    rep = read_json(tmp_path / 'a.json')
    assert rep['synthetic'] and rep['layout'] == 'luna16' and rep['usable_pairs'] == 8
    # the only findings: the two series without a nodule have an empty label (true negatives of LUNA16)
    assert {(f['kind'], f['severity']) for f in rep['findings']} == {('empty_label', 'warning')}
    assert sorted(f['case'] for f in rep['findings']) == ['synthetic.ct.0.003', 'synthetic.ct.0.007']
    segcore('plan', ct8, '--out', tmp_path / 'plan.json', '--quiet')
    norm = read_json(tmp_path / 'plan.json')['config']['normalization']
    assert len(norm) == 1 and norm[0]['scheme'] == 'ct' and -1000 < norm[0]['clip'][0] < norm[0]['clip'][1] < 200
