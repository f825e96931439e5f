"""`segcore journey` on the two field datasets, end to end at smoke budgets: chest CT in the LUNA16 layout (the
held-out split scored by the FROC score) and four-channel brain-tumour MR with non-contiguous labels 0/1/2/4 (scored
by the tumour regions). Both are the library's synthetic phantoms, small enough for CI (one journey each)."""
import json
import pytest
from conftest import segcore, read_json

STAGES = [f'{k:02d}' for k in range(1, 9)]
CT_STAGES = ['01', '02', '03', '07']                   # the FROC score: the held-out split, an ablation, TTA
BRATS_STAGES = ['01', '02', '03', '04', '05', '07', '08']    # four channels through every network and benchmark
PAGES = ['01_data_audit', '02_baseline', '03_loss_ablation', '04_augmentation_ablation', '05_architectures',
         '06_hpo', '07_tta_postprocessing', '08_benchmarks']
ARCHS = """prefix: arch
baseline: "UNet (baseline)"
match: time
arms:
  - name: "UNet (baseline)"
    overrides: {}
  - name: SegResNet
    overrides: {model: segresnet}
"""


def _journey(root, data, stages: list):
    """The smoke journey's `stages` on `data`, with stage 05 cut to two arms (UNETR and SwinUNETR alone cost CI a
    minute): the knob is the stage's `ablation` parameter. Stage 06 (HPO) has nothing field-specific and runs in
    test_journey.py; the CT journey also leaves stages 04, 05 and 08 to the BraTS one (CI time)."""
    (root / 'archs.yaml').write_text(ARCHS)
    out = root / 'journey'
    arch = ['--param', f'05.ablation={root / "archs.yaml"}'] if '05' in stages else []
    segcore('journey', '--data', data, '--profile', 'smoke', '--out', out, '--quiet', '--stages', ','.join(stages),
            *arch, '--param', '07.tta=flips', timeout=900)
    return out


@pytest.fixture(scope='module')
def ct(tmp_path_factory):
    "12 small chest CT series (LUNA16 layout: annotations.csv in world mm; every 4th series without a nodule)."
    from segcore.phantom_ct import write_ct_phantom
    root = tmp_path_factory.mktemp('ct')
    data = write_ct_phantom(root / 'ct', n_cases=12, shape=(64, 64, 32))
    return data, _journey(root, data, CT_STAGES)


@pytest.fixture(scope='module')
def brats(tmp_path_factory):
    "12 small BraTS-like cases: four MR channel files per case, labels 0/1/2/4, regions declared in dataset.json."
    from segcore.phantom_brats import write_brats_phantom
    root = tmp_path_factory.mktemp('brats')
    data = write_brats_phantom(root / 'brats', n_cases=12, shape=(40, 48, 40))
    return data, _journey(root, data, BRATS_STAGES)


def _check_common(out, stages: list):
    "Every stage asked for done and rendered, no error output, every page stamped synthetic; the stage records."
    run = read_json(out / 'run.json')
    st = {s['stage']: s for s in run['stages']}
    assert list(st) == STAGES, list(st)
    assert all(s['status'] == ('done' if k in stages else 'not run') for k, s in st.items()), \
        [(k, s['status'], s.get('error')) for k, s in st.items()]
    assert run['data']['synthetic'] is True and 'SYNTHETIC DATA' in (out / 'index.html').read_text()
    pages = [p for p in PAGES if p[:2] in stages]
    for page in pages:
        html = (out / f'{page}.html').read_text()
        assert 'SYNTHETIC DATA' in html, page
        nb = json.loads((out / 'notebooks' / f'{page}.ipynb').read_text())
        assert not any(o.get('output_type') == 'error' for c in nb['cells'] for o in c.get('outputs', [])), page
    for p in ('03_loss_ablation', '04_augmentation_ablation', '05_architectures'):
        if p in pages: assert 'Ranked by validation Dice' in (out / f'{p}.html').read_text(), p
    return {k: read_json(out / 'stages' / f'{k}.json') for k in stages}


def test_ct_journey_reports_froc(ct):
    data, out = ct
    rec = _check_common(out, CT_STAGES)
    p1 = (out / '01_data_audit.html').read_text()
    assert 'The plan' in p1 and 'patch size' in p1                                   # the plan's choices
    assert 'LUNA16 FROC score' in p1 and '1 nodule' in p1                            # the field, labels named
    f = rec['02']['metrics']['froc']
    assert 0 <= f['score'] <= 1 and len(f['ci95']) == 2 and f['n_scans'] == rec['02']['metrics']['test_n']
    assert list(f['sensitivity']) == ['0.125', '0.25', '0.5', '1', '2', '4', '8']
    assert all(0 <= s <= 1 for s in f['sensitivity'].values()) and f['n_nodules'] >= 1
    assert len(f['by_size']) == 4 and sum(b['n'] for b in f['by_size']) == f['n_nodules']
    assert rec['02']['summary'].startswith('held-out FROC') and f"in {f['n_scans']} scans" in rec['02']['summary']
    p2 = (out / '02_baseline.html').read_text()
    assert 'Nodule detection: FROC' in p2 and 'false positives per scan' in p2 and 'plotly-graph-div' in p2
    assert 'detection by nodule diameter' in p2 and '95% CI' in p2
    f7 = rec['07']['metrics']['field']['froc']
    assert set(f7) == {'plain', 'TTA (flips)'} and all(0 <= v['score'] <= 1 for v in f7.values())
    assert 'FROC plain' in rec['07']['summary']
    assert 'FROC per method' in (out / '07_tta_postprocessing.html').read_text()


def test_brats_journey_reports_regions(brats):
    data, out = brats
    rec = _check_common(out, BRATS_STAGES)
    p1 = (out / '01_data_audit.html').read_text()
    assert 'enhancing tumour' in p1 and 't2f' in p1 and 'tumour regions' in p1
    assert p1.count('data:image/png') >= 2                      # the gallery and the four channels of one case
    assert '<strong>channels</strong>: t1n, t1c, t2w, t2f' in p1                       # every channel named
    r = rec['02']['metrics']['regions']
    assert set(r) == {'whole_tumour', 'tumour_core', 'enhancing_tumour'}
    assert r['whole_tumour']['labels'] == [1, 2, 4] and r['enhancing_tumour']['labels'] == [4]
    for v in r.values():
        assert 0 <= v['dice']['mean'] <= 1 and v['dice']['n'] == rec['02']['metrics']['test_n']
        assert v['hd95']['mean'] >= 0 and v['dice']['ci_low'] <= v['dice']['mean'] <= v['dice']['ci_high']
    assert 'held-out region Dice WT' in rec['02']['summary']
    p2 = (out / '02_baseline.html').read_text()
    assert 'Tumour regions' in p2 and 'whole tumour' in p2 and 'HD95 (mm)' in p2
    assert '4 enhancing tumour' in p2 and '1 necrotic tumour core' in p2          # label values, named
    f7 = rec['07']['metrics']['field']['regions']
    assert {'plain', 'TTA (flips)'} <= set(f7) and set(f7['plain']) == set(r)
    assert 'tumour regions per method' in (out / '07_tta_postprocessing.html').read_text()

