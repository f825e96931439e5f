"""`segcore audit` on generated datasets of each layout, the phantom, and the LUNA16 fixture."""
import numpy as np
from conftest import segcore, read_json
from segcore.io import write_itk, make_affine, vox2world
from segcore.data import discover, load_case


def _luna_fixture(root):
    "Two CT series (anisotropic, one with a flipped axis) and nodules at known voxel centres."
    (root / 'subset0').mkdir(parents=True)
    (root / 'subset1').mkdir()
    series = {'1.3.6.1.4.1.14519.5.2.1.6279.6001.100': (make_affine((0.68, 0.68, 2.5), origin=(180., 175., -320.)),
                                                        (96, 96, 40), [((30, 40, 12), 10.), ((70, 22, 30), 6.)]),
              '1.3.6.1.4.1.14519.5.2.1.6279.6001.200': (make_affine((0.8, 0.75, 1.25), origin=(-10., 200., 40.),
                                                                    direction=[[1, 0, 0], [0, -1, 0], [0, 0, 1]]),
                                                        (80, 72, 64), [((41, 33, 20), 12.)])}
    rows, truth = ['seriesuid,coordX,coordY,coordZ,diameter_mm'], {}
    for k, (uid, (aff, shape, nodules)) in enumerate(series.items()):
        ct = np.full(shape, -1000, np.int16)
        write_itk(ct, aff, root / f'subset{k}' / f'{uid}.mhd')
        for vox, d in nodules:
            lps = vox2world(aff, vox) * [-1, -1, 1]          # LUNA16 coordinates are world mm in the ITK (LPS) frame
            rows.append(f'{uid},{lps[0]:.6f},{lps[1]:.6f},{lps[2]:.6f},{d}')
        truth[uid] = nodules
    (root / 'annotations.csv').write_text('\n'.join(rows) + '\n')
    return truth


def test_luna16_nodule_centres_within_half_a_voxel(tmp_path):
    from scipy import ndimage
    root = tmp_path / 'luna16'
    truth = _luna_fixture(root)
    segcore('audit', root, '--json', tmp_path / 'a.json', '--quiet')
    rep = read_json(tmp_path / 'a.json')
    assert rep['layout'] == 'luna16' and rep['usable_pairs'] == 2
    idx = discover(root)
    for uid, nodules in truth.items():
        lab = load_case(idx.case(uid), idx).label
        comps, n = ndimage.label(lab)
        assert n == len(nodules)
        centres = ndimage.center_of_mass(lab, comps, range(1, n + 1))
        for vox, d in nodules:
            best = min(centres, key=lambda c: np.linalg.norm(np.subtract(c, vox)))
            assert np.all(np.abs(np.subtract(best, vox)) <= 0.5), (uid, vox, best)


def test_phantom_audit_is_stamped_synthetic(tmp_path):
    segcore('phantom', tmp_path / 'ph', '--n', '6')
    segcore('audit', tmp_path / 'ph', '--json', tmp_path / 'a.json', '--html', tmp_path / 'a.html', '--quiet')
    rep = read_json(tmp_path / 'a.json')
    assert rep['synthetic'] is True and 'SYNTHETIC' in rep['synthetic_note']
    assert rep['layout'] == 'msd' and rep['usable_pairs'] == 6 and rep['n_cases'] == 6
    assert not [f for f in rep['findings'] if f['severity'] == 'error']
    assert all(set(c['label_values']) == {'0', '1', '2'} for c in rep['cases'])
    assert 'SYNTHETIC DATA' in (tmp_path / 'a.html').read_text()


def test_phantom_2d_audits(tmp_path):
    segcore('phantom', tmp_path / 'ph2', '--n', '4', '--dim', '2')
    segcore('audit', tmp_path / 'ph2', '--json', tmp_path / 'a.json', '--quiet')
    rep = read_json(tmp_path / 'a.json')
    assert rep['synthetic'] is True and rep['usable_pairs'] == 4 and len(rep['cases'][0]['shape']) == 2


def test_split_cli_round_trip(tmp_path):
    from segcore.splits import Splits
    segcore('phantom', tmp_path / 'ph', '--n', '20')
    segcore('split', tmp_path / 'ph', '--out', tmp_path / 'splits.json', '--folds', '3', '--quiet')
    s = Splits.load(tmp_path / 'splits.json')
    idx = discover(tmp_path / 'ph')
    s.check_cases(idx.patients())
    test = set(s.held_out().case_ids)
    for k in range(3):
        f = s.fold(k)
        assert not test & set(f.train) and not test & set(f.val)
        assert not {idx.case(c).patient_id for c in f.train} & {idx.case(c).patient_id for c in f.val}


def test_journey_on_phantom_writes_reports(tmp_path):
    out = tmp_path / 'run'
    segcore('journey', '--data', 'phantom', '--out', out, '--profile', 'smoke', '--stages', '01', '--quiet')
    run = read_json(out / 'run.json')
    assert run['data']['synthetic'] is True and run['data']['kind'] == 'phantom'
    st = {s['stage']: s['status'] for s in run['stages']}
    assert st['01'] == 'done' and all(v == 'not run' for k, v in st.items() if k != '01')
    assert len(run['data']['sha256']) == 64 and run['environment']['versions']['monai']
    for name in ('index.html', '01_data_audit.html', 'audit.json', 'audit.html', 'splits.json',
                 'notebooks/01_data_audit.ipynb'):
        assert (out / name).exists(), name
    assert 'SYNTHETIC DATA' in (out / 'index.html').read_text()
    assert 'SYNTHETIC DATA' in (out / '01_data_audit.html').read_text()


def test_journey_with_relative_data_and_out_paths(tmp_path):
    "Stages run with their report folder as working directory: a relative --data must still be found."
    segcore('phantom', tmp_path / 'ph', '--n', '12')
    segcore('journey', '--data', 'ph', '--out', 'rel/run', '--profile', 'smoke', '--stages', '01', '--quiet',
            cwd=tmp_path)
    run = read_json(tmp_path / 'rel/run/run.json')
    assert run['data']['path'] == str((tmp_path / 'ph').resolve()) and run['stages'][0]['status'] == 'done'
    assert read_json(tmp_path / 'rel/run/audit.json')['n_cases'] == 12
    r = segcore('journey', '--data', str(tmp_path / 'ph'), '--out', tmp_path / 'rel/run', '--profile', 'smoke',
                '--stages', '01', '--quiet')
    assert r.returncode == 0  # the same data named absolutely is the same journey


def test_journey_default_data_uses_shared_hippocampus(shared_data, tmp_path):
    out = tmp_path / 'run'
    segcore('journey', '--out', out, '--stages', '01', '--quiet',
            env={**__import__('os').environ, 'SEGCORE_SHARED_DATA': str(shared_data)})
    run = read_json(out / 'run.json')
    assert run['data']['kind'] == 'shared' and run['data']['synthetic'] is False
    assert '210 usable pairs' in run['stages'][0]['summary']
