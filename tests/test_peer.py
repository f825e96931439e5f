"""`segcore bench peer`: the shared split and scoring, the segcore and MONAI sides, resuming, the page and the CLI."""
import json, sys, types
import numpy as np
import pytest
from segcore import peer
from segcore.core import DataError, SegcoreError
from segcore.data import discover
from segcore.io import make_affine, write_nifti
from segcore.phantom import write_phantom_dataset
from segcore.rundir import RunDir
from segcore.stats import bootstrap_ci

TINY = dict(model_size='tiny', patch_size=[16, 16, 16], batch_size=2, iterations_per_epoch=2, val_every=1000,
            tensorboard=False)


@pytest.fixture(scope='module')
def phantom(tmp_path_factory):
    "A 12-case phantom and its peer split."
    data = write_phantom_dataset(tmp_path_factory.mktemp('peer') / 'ph', 12, progress=False)
    return data, peer.peer_split(data)


def _volumes(root, cases: dict):
    "Write `images/<id>.nii.gz` + `labels/<id>.nii.gz` of each case id -> label array (1 mm grid)."
    for d in ('images', 'labels'): (root / d).mkdir(parents=True, exist_ok=True)
    for c, lab in cases.items():
        write_nifti(np.ones(lab.shape, np.float32), make_affine((1, 1, 1)), root / 'images' / f'{c}.nii.gz')
        write_nifti(lab.astype(np.uint8), make_affine((1, 1, 1)), root / 'labels' / f'{c}.nii.gz')


def test_score_folder_equals_hand_computed_dice(tmp_path):
    z = np.zeros((4, 4, 4), np.uint8)
    ref_a, pred_a = z.copy(), z.copy()
    ref_a[0, :2, :2] = 1                # 4 voxels of class 1; the prediction finds 2 of them and 2 more
    pred_a[0, 0, :2], pred_a[1, 0, :2] = 1, 1
    ref_b, pred_b = z.copy(), z.copy()
    ref_b[:2] = 1                       # class 1: 32 voxels, all found; class 2: 16 voxels, none found
    ref_b[2] = 2
    pred_b[:2] = 1
    ref_c = z.copy()
    ref_c[3, 3, 3] = 2                  # class 2 alone, found exactly (class 1 absent from both: NaN, left out)
    _volumes(tmp_path / 'data', {'a': ref_a, 'b': ref_b, 'c': ref_c})
    sp = peer.PeerSplit(tmp_path / 'data', [], [], ['a', 'b', 'c'], discover(tmp_path / 'data'))
    pred = tmp_path / 'pred'
    for c, p in (('a', pred_a), ('b', pred_b), ('c', ref_c)):
        write_nifti(p, make_affine((1, 1, 1)), pred / f'{c}.nii.gz')
    s = peer.score_folder(pred, sp)
    want = {'a': 2 * 2 / (4 + 4), 'b': (1.0 + 0.0) / 2, 'c': 1.0}
    assert s['per_case'] == pytest.approx(want) and s['classes'] == [1, 2] and s['n_heldout'] == 3
    m, lo, hi = bootstrap_ci(list(want.values()), seed=0)
    assert s['heldout_dice'] == pytest.approx(np.mean(list(want.values()))) == pytest.approx(m)
    assert s['ci95'] == pytest.approx([lo, hi])
    write_nifti(pred_a[:3], make_affine((1, 1, 1)), pred / 'a.nii.gz')      # another grid
    with pytest.raises(DataError, match='a.nii.gz: prediction grid'): peer.score_folder(pred, sp)
    (pred / 'b.nii.gz').unlink()
    with pytest.raises(DataError, match='b.nii.gz: no prediction for held-out case b'): peer.score_folder(pred, sp)


def test_compare_points_known_numbers():
    a = {'budget_s': 60.0, 'heldout_dice': 0.6, 'per_case': {'x': 0.9, 'y': 0.5, 'z': 0.4, 'w': float('nan')}}
    b = {'budget_s': 60.0, 'heldout_dice': 0.4, 'per_case': {'x': 0.5, 'y': 0.5, 'z': 0.1, 'w': 0.2, 'v': 1.0}}
    c = peer.compare_points(a, b)
    assert c['ratio'] == pytest.approx(1.5) and c['n_paired'] == 3                # only cases both scored
    assert c['diff'] == pytest.approx((0.4 + 0.0 + 0.3) / 3)
    assert c['diff_ci95'] == pytest.approx(list(bootstrap_ci([0.4, 0.0, 0.3], seed=0)[1:]))


def _fake_point(method, b, split):
    d = {c: (0.8 if method == 'segcore' else 0.6) for c in split.heldout}
    return {'budget_s': float(b), 'train_seconds': float(b), 'heldout_dice': np.mean(list(d.values())),
            'ci95': [0.5, 0.9], 'n_heldout': len(d), 'per_case': d, 'steps': 10, 'predict_seconds': 1.0,
            'notes': f'{method} note'}


def test_resume_skips_done_points_and_the_page(phantom, tmp_path, monkeypatch):
    data, sp = phantom
    calls = []
    def seg(split, b, work, seed=0, profile='quick', progress=True, members=1, runs=None):
        calls.append(('segcore', b))
        return _fake_point('segcore', b, split)
    def nn(split, b, work, py=None, seed=0, progress=True):
        calls.append(('nnunet', b))
        return _fake_point('nnunet', b, split)
    def mon(split, budgets, work, lr=1e-3, seed=0, progress=True):
        calls.append(('monai', tuple(budgets)))
        return [_fake_point('monai', b, split) for b in budgets]
    import segcore.peer_monai
    monkeypatch.setattr(peer, 'segcore_point', seg)
    monkeypatch.setattr(segcore.peer_monai, 'monai_points', mon)
    monkeypatch.setitem(sys.modules, 'segcore.peer_nnunet', types.SimpleNamespace(nnunet_point=nn))
    peer.bench_peer(data, ['nnunet,monai'], [60, 300], tmp_path / 'w', progress=False)
    kept = tmp_path / 'w' / 'monai' / 's0' / 'model-b60.pt'
    kept.write_bytes(b'weights of the 60 s snapshot')
    r = peer.bench_peer(data, ['monai'], [300, 600], tmp_path / 'w', progress=False)
    assert kept.read_bytes() == b'weights of the 60 s snapshot'     # a later budget keeps the earlier ones' models
    assert calls == [('segcore', 60.0), ('segcore', 300.0), ('nnunet', 60.0), ('nnunet', 300.0),
                     ('monai', (60.0, 300.0)), ('segcore', 600.0), ('monai', (600.0,))]
    assert [p['budget_s'] for p in r['segcore']] == [300, 600] and r['nnunet'] == []
    assert len(json.loads((tmp_path / 'w' / 'points.json').read_text())) == 8
    assert [(c['peer'], c['budget_s']) for c in r['comparisons']] == [('monai', 300), ('monai', 600)]
    assert r['comparisons'][0]['ratio'] == pytest.approx(0.8 / 0.6) and r['comparisons'][0]['diff'] == pytest.approx(.2)
    assert (r['n_train'], r['n_val'], r['n_heldout']) == (len(sp.train), len(sp.val), len(sp.heldout))
    from segcore.bench import write_bench
    j, h = write_bench(r, tmp_path / 'out')
    page = h.read_text()
    assert 'segcore against its peers' in page and '<svg' in page and page.count('<table') == 2
    assert '0.800 (95 % CI 0.500–0.900)' in page and 'monai note' in page and 'held-out' in page
    assert "{'" not in page and '[0.' not in page and json.loads(j.read_text())['kind'] == 'peer'


def test_cli_bad_input_is_one_line(phantom, capsys):
    from segcore.cli import main
    data, _ = phantom
    for args, msg in ((['--against', 'nnu'], "unknown peer 'nnu'"), (['--budget-s', '-5'], 'positive seconds'),
                      (['--member-s', 'nan'], '--member-s must be seconds')):
        assert main(['bench', 'peer', '--data', str(data), *args]) == 2
        err = capsys.readouterr().err.strip()
        assert msg in err and len(err.splitlines()) == 1, err
    assert main(['bench', 'peer', '--data', str(data / 'nope')]) == 2
    assert 'no dataset folder here' in capsys.readouterr().err
    assert main(['bench', 'peer', '--data', str(data), '--rescore', str(data / 'nope')]) == 2
    err = capsys.readouterr().err.strip()
    assert f'{data / "nope"}: no dataset folder here' in err and len(err.splitlines()) == 1, err
    assert main(['bench', 'peer', '--data', str(data), '--work', str(data / 'work')]) == 2   # never into the data
    err = capsys.readouterr().err.strip()
    assert 'lies inside the input' in err and '--work' in err and not (data / 'work').exists(), err


def test_segcore_point_trains_the_peer_split(phantom, tmp_path, monkeypatch):
    from segcore.train import Trainer
    data, sp = phantom
    monkeypatch.setattr(Trainer, 'measure_step_rate', lambda self, *a, **kw: 2.0)   # a step count, not the load
    p = peer.segcore_point(sp, 2, tmp_path / 'w', progress=False, **TINY)
    f = RunDir(tmp_path / 'w' / 'run').splits().fold(0)          # the trainer's own split is the peer split
    assert (sorted(f.train), sorted(f.val)) == (sorted(sp.train), sorted(sp.val))
    assert p['n_heldout'] == len(sp.heldout) and sorted(p['per_case']) == sorted(sp.heldout)
    assert (p['steps'], p['epochs']) == (4, 2) and p['ci95'][0] <= p['heldout_dice'] <= p['ci95'][1]
    assert p['train_seconds'] > 0 and p['predict_seconds'] > 0 and 'planned' in p['notes']
    other = peer.PeerSplit(sp.data, sp.train[1:], sp.val + sp.train[:1], sp.heldout, sp.index, sp.sha256)
    with pytest.raises(SegcoreError, match='another split'): peer._check_same_split(tmp_path / 'w' / 'run', other)


def test_segcore_budget_is_planned_by_the_trainer(phantom):
    "segcore's side passes the budget to the trainer (`budget_s`), which plans the whole schedule; nothing cuts it."
    data, _ = phantom
    cfg, plan = peer._budgeted_config(data, 60, profile='quick')
    assert (cfg.budget_s, cfg.time_limit_s, cfg.fold, cfg.test_fraction) == (60.0, None, 0, 0.2)
    assert cfg.patch_size == plan['config']['patch_size']             # the profile on the data's plan


def test_monai_points_end_to_end(phantom, tmp_path):
    from segcore.peer_monai import monai_points
    _, sp = phantom
    pts = monai_points(sp, (5, 10), tmp_path / 'w', progress=False)
    assert [p['budget_s'] for p in pts] == [5.0, 10.0]
    assert 5 <= pts[0]['train_seconds'] <= pts[1]['train_seconds'] and 10 <= pts[1]['train_seconds']
    assert 0 < pts[0]['steps'] <= pts[1]['steps']           # equal only when one (slow) step passed both budgets
    for p in pts:
        assert p['n_heldout'] == len(sp.heldout) and 0 <= p['ci95'][0] <= p['heldout_dice'] <= p['ci95'][1] <= 1
        assert sorted(p['per_case']) == sorted(sp.heldout) and 'snapshot' in p['notes']
        assert p['predict_seconds'] > 0 and p['load_seconds'] > 0


def test_cli_rescore_writes_its_page(phantom, tmp_path, monkeypatch):
    "`--rescore OTHER`: the points of --work scored on OTHER's unseen cases (here perfect predictions), page and JSON."
    import shutil
    import segcore.peer_monai
    from segcore.cli import main
    data, sp = phantom
    monkeypatch.setattr(peer, 'segcore_point', lambda split, b, work, seed=0, profile='quick', progress=True,
                        members=1, runs=None: _fake_point('segcore', b, split))
    monkeypatch.setattr(segcore.peer_monai, 'monai_points', lambda split, budgets, work, lr=1e-3, seed=0,
                        progress=True: [_fake_point('monai', b, split) for b in budgets])
    def perfect(method, point, work, seed, split, progress):          # the labels themselves, as predictions
        out = peer._fresh(work / 'rescore' / f'{method}-{point["budget_s"]:g}')
        for c in split.heldout: shutil.copy(split.index.case(c).label, out / f'{c}.nii.gz')
        return out, 0.5
    monkeypatch.setattr(peer, '_rescore_predict', perfect)
    other = tmp_path / 'other'
    for c in [*sp.heldout, sp.val[0]]:                  # the held-out cases again, and one validation case
        for sub, f in (('images', sp.index.case(c).images[0]), ('labels', sp.index.case(c).label)):
            (other / sub).mkdir(parents=True, exist_ok=True)
            shutil.copy(f, other / sub / f'{c}.nii.gz')
    args = ['bench', 'peer', '--data', str(data), '--against', 'monai', '--budget-s', '60', '--work',
            str(tmp_path / 'w'), '--quiet', '--out', str(tmp_path / 'out')]
    assert main(args) == 0                               # the benchmark first, then its models scored again
    assert main([*args, '--rescore', str(other)]) == 0
    j = sorted((tmp_path / 'out').glob('peer-rescore-*.json'))
    r = json.loads(j[0].read_text())
    assert (r['kind'], r['n_heldout'], r['seen_left_out'], r['not_rescored']) == \
        ('peer-rescore', len(sp.heldout), [sp.val[0]], [])
    assert [(p['heldout_dice'], p['benchmark_heldout_dice']) for p in (*r['segcore'], *r['monai'])] == \
        [(1.0, pytest.approx(0.8)), (1.0, pytest.approx(0.6))]
    page = j[0].with_suffix('.html').read_text()
    assert 'the kept models on other cases' in page and 'benchmark held-out Dice' in page and str(other) in page


def test_work_of_another_dataset_is_refused(phantom, tmp_path, monkeypatch):
    "A --work folder holds one dataset's points: another dataset's split does not reuse them (it would mix the two)."
    data, _ = phantom
    monkeypatch.setattr(peer, 'segcore_point', lambda split, b, work, seed=0, profile='quick', progress=True,
                        members=1, runs=None: _fake_point('segcore', b, split))
    peer.bench_peer(data, [], [60], tmp_path / 'w', progress=False)
    lab = np.zeros((6, 6, 6), np.uint8)
    lab[1:4, 1:4, 1:4] = 1
    _volumes(tmp_path / 'other', {f'x{i}': lab for i in range(8)})
    with pytest.raises(SegcoreError, match='holds a segcore point at 60 s scored on other held-out cases'):
        peer.bench_peer(tmp_path / 'other', [], [60], tmp_path / 'w', progress=False)
    assert len(json.loads((tmp_path / 'w' / 'points.json').read_text())) == 1       # nothing added or lost
