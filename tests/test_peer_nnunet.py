"""The nnU-Net v2 side of the peer benchmark (segcore.peer_nnunet): nnU-Net's raw dataset written from segcore's split,
the budgeted trainer's schedule inside nnU-Net's venv, and one tiny end-to-end point. Skips cleanly without the shared
data or the nnU-Net venv (~/.cache/segcore/nnunet-venv, or $SEGCORE_NNUNET_VENV)."""
import json, os, shutil, subprocess, time
from dataclasses import dataclass
from pathlib import Path
import numpy as np
import pytest
from segcore.core import SegcoreError
from segcore import peer_nnunet as pn


@dataclass
class _Split:      # stand-in for segcore.peer.PeerSplit until segcore/peer.py is merged
    data: Path
    train: list
    val: list
    heldout: list
    index: object


def _peer_split(data):
    from segcore.splits import split_dataset
    from segcore.data import discover
    _, sp = split_dataset(data, None, 5, 0.2, 0)
    f = sp.fold(0)
    return _Split(Path(data), list(f.train), list(f.val), list(sp.held_out().case_ids), discover(data))


def _score_folder(pred_dir, split):
    "Stand-in for segcore.peer.score_folder: mean foreground Dice per held-out case, bootstrap CI."
    from segcore.io import read_image
    from segcore.pipeline import dice_per_class
    from segcore.stats import bootstrap_ci
    labels = {c: np.asarray(read_image(split.index.case(c).label).array) for c in split.heldout}
    k = range(1, int(max(t.max() for t in labels.values())) + 1)
    per = {}
    for c, t in labels.items():
        p = Path(pred_dir) / f'{c}.nii.gz'
        if not p.is_file(): raise SegcoreError(f'{p}: no prediction for held-out case {c}')
        per[c] = float(np.nanmean(list(dice_per_class(np.asarray(read_image(p).array), t, k).values())))
    m, lo, hi = bootstrap_ci(list(per.values()), seed=0)
    return {'heldout_dice': m, 'ci95': [lo, hi], 'n_heldout': len(per), 'per_case': per}


@pytest.fixture(scope='module')
def nnunet_py():
    venv = Path(os.environ.get('SEGCORE_NNUNET_VENV', Path.home() / '.cache' / 'segcore' / 'nnunet-venv'))
    try: return pn.nnunet_env(venv, install=False)
    except SegcoreError as e: pytest.skip(str(e))


@pytest.fixture(scope='module')
def hippo_split(shared_data):
    return _peer_split(shared_data / 'hippocampus')


def test_raw_dataset_round_trip(hippo_split, tmp_path):
    "Only fold-0 train+val cases in the dataset, held-out images only in imagesTs, splits_final fold 0 = segcore's."
    sp = hippo_split
    raw = pn.write_nnunet_raw(sp, tmp_path / 'raw')
    ids = json.loads((raw / 'segcore_cases.json').read_text())['nnunet_ids']
    assert raw.name == 'Dataset990_SegcoreHippocampus' and len(sp.heldout) == 42 and len(sp.train) + len(sp.val) == 168
    meta = json.loads((raw / 'dataset.json').read_text())
    names = {'background': 0, 'anterior hippocampus': 1, 'posterior hippocampus': 2}     # SOURCE.md's Labels: line
    assert meta == {'channel_names': {'0': 'image'}, 'labels': names,
                    'numTraining': 168, 'file_ending': '.nii.gz', 'name': 'SegcoreHippocampus'}
    names = {d: sorted(p.name for p in (raw / d).iterdir()) for d in ('imagesTr', 'labelsTr', 'imagesTs')}
    assert names['labelsTr'] == sorted(f'{ids[c]}.nii.gz' for c in sp.train + sp.val)
    assert names['imagesTr'] == sorted(f'{ids[c]}_0000.nii.gz' for c in sp.train + sp.val)
    assert names['imagesTs'] == sorted(f'{ids[c]}_0000.nii.gz' for c in sp.heldout)
    held = {ids[c] for c in sp.heldout}
    assert not held & {n[:-len('.nii.gz')] for n in names['labelsTr']}
    for c in (sp.train[0], sp.heldout[0]):      # the files are the split's own
        sub = 'imagesTs' if c in sp.heldout else 'imagesTr'
        assert (raw / sub / f'{ids[c]}_0000.nii.gz').read_bytes() == Path(sp.index.case(c).images[0]).read_bytes()
    folds = json.loads(pn.write_splits_final(sp, tmp_path / 'pre').read_text())
    inv = {v: k for k, v in ids.items()}
    assert len(folds) == 1 and [inv[c] for c in folds[0]['train']] == sp.train and \
        [inv[c] for c in folds[0]['val']] == sp.val


def test_budget_lr_inside_nnunet(nnunet_py):
    "The installed trainer module, imported by nnU-Net's python: the poly schedule over seconds, and the class."
    path = pn.install_budget_trainer(nnunet_py)
    code = ('from nnunetv2.training.nnUNetTrainer.nnUNetTrainerSegcoreBudget import budget_lr, '
            'nnUNetTrainerSegcoreBudget as T\nfrom nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer\n'
            'assert issubclass(T, nnUNetTrainer)\nprint([budget_lr(0.01, t, 60) for t in (0, 30, 60, 90)])')
    r = subprocess.run([str(nnunet_py), '-c', code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert np.allclose(json.loads(r.stdout), [0.01, 0.01 * 0.5 ** 0.9, 0, 0]) and path.name.endswith('Budget.py')


def test_prepare_failure_names_the_log(hippo_split, tmp_path):
    "A failing nnU-Net command: one SegcoreError line naming its log file."
    fake = tmp_path / 'venv' / 'bin'
    fake.mkdir(parents=True)
    (fake / 'nnUNetv2_plan_and_preprocess').write_text('#!/bin/sh\necho planner broke >&2\nexit 2\n')
    (fake / 'nnUNetv2_plan_and_preprocess').chmod(0o755)
    with pytest.raises(SegcoreError) as e: pn.nnunet_prepare(hippo_split, tmp_path / 'w', fake / 'python')
    log = tmp_path / 'w' / 'plan_preprocess.log'
    assert str(e.value) == f'nnU-Net planning and preprocessing failed (exit 2); see {log}'
    assert 'planner broke' in log.read_text()


@pytest.mark.slow
def test_nnunet_point_tiny(hippo_split, nnunet_py, tmp_path):
    "nnU-Net end to end on 10 real cases, 20 s budget: planned, trained on fold 0 only, held-out predicted, scored."
    data = tmp_path / 'tiny'
    for c in (hippo_split.train + hippo_split.val)[:10]:
        case = hippo_split.index.case(c)
        for src, sub in ((case.images[0], 'images'), (case.label, 'labels')):
            (data / sub).mkdir(parents=True, exist_ok=True)
            shutil.copy(src, data / sub / Path(src).name)
    sp = _peer_split(data)
    t = time.perf_counter()
    pt = pn.nnunet_point(sp, 20, tmp_path / 'work', py=nnunet_py, progress=False, iterations_per_epoch=2,
                         score=_score_folder)
    assert {'budget_s', 'train_seconds', 'heldout_dice', 'ci95', 'n_heldout', 'per_case', 'steps',
            'predict_seconds', 'notes'} <= set(pt)
    assert pt['steps'] >= 1 and pt['train_seconds'] >= 20 and pt['n_heldout'] == len(sp.heldout) == 2
    assert sorted(pt['per_case']) == sorted(sp.heldout) and 0 <= pt['heldout_dice'] <= 1
    assert pt['split_file_used'].endswith('Dataset990_SegcoreHippocampus/splits_final.json')
    assert len(pt['patch_size']) == 3 and pt['batch_size'] >= 2 and not pt['preprocess_reused']
    pre = tmp_path / 'work' / 'nnUNet_preprocessed' / 'Dataset990_SegcoreHippocampus' / 'gt_segmentations'
    assert sorted(p.name[:-7] for p in pre.iterdir()) == sorted(sp.train + sp.val)   # nnU-Net saw no held-out case
    again = pn.nnunet_prepare(sp, tmp_path / 'work', nnunet_py)
    assert again['preprocess_reused'] and again['preprocess_seconds'] == 0
    from segcore.peer import PeerSplit                   # the kept model, scored again on the held-out images
    pred, _ = pn.nnunet_rescore(PeerSplit(data, [], [], sp.heldout, sp.index, 'a' * 64), 20, tmp_path / 'work',
                                py=nnunet_py, progress=False)
    assert _score_folder(pred, sp)['per_case'] == pt['per_case']
    print(f'tiny nnU-Net point: {time.perf_counter() - t:.0f} s, {pt["steps"]} steps, Dice {pt["heldout_dice"]:.3f}')
