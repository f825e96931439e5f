"""CT / LUNA16: the chest CT phantom, its audit and plan, FROC, and evaluation of a trained model with `froc`."""
import json
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
    # the only warnings: the two series without a nodule have an empty label (true negatives of LUNA16); each series
    # has its own spacing, as CT scans do: one dataset-level note, not a geometry outlier per series
    kinds = {(f['kind'], f['severity']) for f in rep['findings']}
    assert kinds == {('empty_label', 'warning'), ('spacing_varies', 'info')}
    assert sorted(f['case'] for f in rep['findings'] if f['severity'] == 'warning') == ['synthetic.ct.0.003',
                                                                                          'synthetic.ct.0.007']
    segcore('plan', ct8, '--out', tmp_path / 'plan.json', '--quiet')
    norm = read_json(tmp_path / 'plan.json')['config']['normalization']
    assert len(norm) == 1 and norm[0]['scheme'] == 'ct' and -1000 < norm[0]['clip'][0] < norm[0]['clip'][1] < 200


def _c(xyz, s): return {'xyz': xyz, 'score': s}


def test_froc_hand_computed():
    "4 scans (one empty), 4 nodules, 6 candidates: one duplicate hit, one candidate exactly on a radius (a miss)."
    from segcore.froc import froc
    nod = {'A': [{'xyz': [0, 0, 0], 'diameter_mm': 10}, {'xyz': [30, 0, 0], 'diameter_mm': 6}],
           'B': [{'xyz': [0, 0, 0], 'diameter_mm': 8}], 'C': [{'xyz': [0, 0, 0], 'diameter_mm': 20}], 'D': []}
    cand = {'A': [_c([1, 1, 1], .9), _c([2, 0, 0], .6), _c([30, 3, 0], .8)],
            'B': [_c([50, 50, 50], .4), _c([0, 0, 3], .4)], 'C': [_c([100, 0, 0], .4)]}
    f = froc(cand, nod)
    # TP scores .9, .4; FP .8, .4, .4 -> points (0, 1/4), (1/4, 1/4), (3/4, 1/2)
    assert f['curve'] == [[0, 0], [0, .25], [.25, .25], [.75, .5]]
    assert f['sensitivity'] == {'0.125': .25, '0.25': .25, '0.5': .375, '1': .5, '2': .5, '4': .5, '8': .5}
    assert f['score'] == pytest.approx((.25 + .25 + .375 + 4 * .5) / 7)
    assert (f['n_nodules'], f['n_detected'], f['n_false_positives'], f['n_duplicates'], f['n_scans']) == (4, 2, 3, 1, 4)
    # the duplicate (.6) is neither TP nor FP: dropping it changes nothing
    cand['A'].pop(1)
    assert froc(cand, nod)['curve'] == f['curve']
    # an empty scan still counts for the false positives per scan: 8 scans halve every FP rate
    g = froc(cand, nod, n_scans=8)
    assert g['curve'][-1] == [3 / 8, .5] and g['sensitivity']['0.5'] == .5
    # no candidates: nothing found; candidates but no nodules: undefined, null in JSON
    assert froc({}, nod)['score'] == 0 and froc({}, nod)['sensitivity']['8'] == 0
    assert np.isnan(froc({'D': [_c([0, 0, 0], .9)]}, {'D': []})['score'])


def test_candidates_from_the_phantom_masks_find_every_nodule(ct8):
    "The annotated spheres as a perfect prediction: every nodule hit at its world centre, mimics as FPs rank below."
    from segcore.froc import luna_case, froc_report
    idx = discover(ct8)
    cases = {}
    for c in idx.cases:
        lc = load_case(c, idx)
        cases[c.case_id] = luna_case(lc.label.astype(np.float32), lc.affine, c.annotations)
        for cand in cases[c.case_id]['candidates']:      # centres of mass land on the annotated centres
            assert min(np.linalg.norm(np.subtract(cand['xyz'], n['xyz'])) for n in c.annotations) < 0.5 * 2.5
    rep = froc_report(cases, n_boot=100)
    n = sum(len(c.annotations) for c in idx.cases)
    assert rep['score'] == 1.0 and rep['n_nodules'] == n and rep['n_false_positives'] == 0
    assert rep['nodule_dice']['mean'] == 1.0 and sum(b['n'] for b in rep['by_size']) == n


def test_evaluate_json_holds_froc(ct8, tmp_path):
    "A tiny model trained on the CT phantom: `segcore evaluate --json` on its held-out scans carries the FROC."
    run = tmp_path / 'run'
    segcore('train', '--data', ct8, '--out', run, '--quiet', '--profile', 'tiny', '--set', 'epochs=1',
            '--set', 'patch_size=[32,32,16]', '--set', 'val_overlap=0', '--set', 'hard_negative_prob=0.2')
    r = segcore('evaluate', '--model', run, '--data', ct8, '--split', 'test', '--json', tmp_path / 'ev.json', '--quiet')
    assert 'FROC score' in r.stdout and 'nodules in 2 scans' in r.stdout
    ev = json.loads((tmp_path / 'ev.json').read_text(), parse_constant=lambda c: pytest.fail(f'{c} in the JSON'))
    f = ev['froc']
    assert set(f['sensitivity']) == {'0.125', '0.25', '0.5', '1', '2', '4', '8'} and f['n_scans'] == 2
    assert 0 <= f['score'] <= 1 and f['score'] == pytest.approx(np.mean(list(f['sensitivity'].values())))
    assert f['synthetic'] is True and 'held-out' in f['split'] and len(f['ci95']) == 2
    n = sum(len(c.annotations) for c in discover(ct8).cases if c.case_id in {x['case'] for x in ev['cases']})
    assert f['n_nodules'] == n == f['nodule_dice']['n'] == sum(b['n'] for b in f['by_size'])
    from segcore.rundir import RunDir                 # the plan's CT normalisation trained the model and predicts
    assert RunDir(run).config().normalization[0]['scheme'] == 'ct'


def test_ct_normalisation_and_hard_negatives_on_the_phantom(ct8, tmp_path):
    "The plan's CT normalisation reaches preprocessing; hard negatives from candidates.csv centre patches."
    from segcore.plan import plan_dataset
    from segcore.pipeline import load_prepared, PatchSampler
    from segcore.froc import hard_negative_voxels, read_luna_candidates
    plan = plan_dataset(ct8)
    norm = plan['config']['normalization']
    lo, hi = norm[0]['clip']
    idx = discover(ct8)
    prep = load_prepared(idx.cases[:2], idx, plan['config']['target_spacing'], None, False, norm)
    for p in prep.values():                            # clipped to the plan's HU range, then its one z-score
        x = p.image[0] * norm[0]['std'] + norm[0]['mean']
        assert x.min() == pytest.approx(lo, abs=0.05) and x.max() == pytest.approx(hi, abs=0.05)
    cases = list(prep.values())
    neg = hard_negative_voxels(idx, cases)
    n0 = {k: sum(c['class'] == 0 for c in v) for k, v in read_luna_candidates(ct8 / 'candidates.csv').items()}
    assert all(len(neg[c.case_id]) == n0[c.case_id] >= 3 for c in cases)
    s = PatchSampler(cases, (8, 8, 4), pos_ratio=0.0, negatives=neg, hard_negative_prob=1.0)
    centres = [tuple(s._centre(0, np.random.default_rng(k), np.array([8, 8, 4]))) for k in range(20)]
    assert set(centres) <= {tuple(v) for v in neg[s.cases[0].case_id]}
    s = PatchSampler(cases, (8, 8, 4), pos_ratio=0.0, negatives=neg, hard_negative_prob=0.0)
    centres = [tuple(s._centre(0, np.random.default_rng(k), np.array([8, 8, 4]))) for k in range(20)]
    assert not set(centres) <= {tuple(v) for v in neg[s.cases[0].case_id]}
