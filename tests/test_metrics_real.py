"""segcore.metrics on real hippocampus label maps (../shared/data): Dice, HD95, ASSD and NSD agree with MONAI 1.6.1
to 1e-6 for every class, with isotropic and anisotropic spacing, and with medpy when it is importable.
"Predictions" are deterministic perturbations of the reference (erosion, dilation, a one-voxel shift, a dropped
slice) and other cases cropped to a common shape. Skipped cleanly when the data are absent."""
import math, warnings
import numpy as np
import pytest
import torch
from scipy import ndimage as ndi
from segcore.io import read_nifti
from segcore.metrics import case_metrics, surface_distances, hausdorff

N_CASES = 10
CLASSES = (1, 2)
SPACINGS = [(1.0, 1.0, 1.0), (0.8, 1.0, 2.5)]


@pytest.fixture(autouse=True)
def _one_torch_thread():
    "MONAI's per-call torch work on these small tensors is fastest (and immune to a busy machine) on one thread."
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope='module')
def labels(shared_data):
    "The first N_CASES label maps of the usual geometry (uint8, 0/1/2)."
    out = {}
    for p in sorted((shared_data / 'hippocampus' / 'labels').glob('*.nii.gz')):
        a = np.asarray(read_nifti(p).array)
        if set(np.unique(a)) == {0, 1, 2}: out[p.name.split('.')[0]] = a.astype(np.uint8)
        if len(out) == N_CASES: break
    assert len(out) == N_CASES
    return out


def perturbations(names, labels):
    "(name, pred, ref) triples: each case against deterministic perturbations of itself and against the next case."
    for i, name in enumerate(names):
        ref = labels[name]
        ero = ref.copy()
        c1 = ref == 1
        ero[c1 & ~ndi.binary_erosion(c1)] = 0
        dil = ref.copy()
        dil[ndi.binary_dilation(ref == 2) & (ref == 0)] = 2
        sh = np.zeros_like(ref)
        sh[:, 1:] = ref[:, :-1]
        k = int(np.flatnonzero((ref > 0).any(axis=(0, 1))).mean())  # a slice through the structure
        drop = ref.copy()
        drop[:, :, k] = 0
        yield f'{name}/erode1', ero, ref
        yield f'{name}/dilate2', dil, ref
        yield f'{name}/shift', sh, ref
        yield f'{name}/dropslice', drop, ref
        other = labels[names[(i + 1) % len(names)]]
        box = tuple(slice(0, min(a, b)) for a, b in zip(ref.shape, other.shape))
        yield f'{name}/vs_next', other[box], ref[box]


def monai_scores(pred, ref, spacing, tol):
    "MONAI's per-class Dice, HD95, symmetric ASD and NSD (one-hot, background excluded), as {class: dict}."
    from monai.metrics import (compute_dice, compute_hausdorff_distance, compute_average_surface_distance,
                               compute_surface_dice)
    def oh(l):
        return torch.as_tensor(np.stack([l == k for k in (0, *CLASSES)]).astype(np.float32))[None]
    p, r = oh(pred), oh(ref)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        res = dict(dice=compute_dice(p, r, include_background=False, ignore_empty=False),
                   hd95=compute_hausdorff_distance(p, r, percentile=95, spacing=spacing),
                   assd=compute_average_surface_distance(p, r, symmetric=True, spacing=spacing),
                   nsd=compute_surface_dice(p, r, [tol] * len(CLASSES), spacing=spacing))
    return {c: {k: float(v[0, j]) for k, v in res.items()} for j, c in enumerate(CLASSES)}


@pytest.mark.parametrize('spacing,tol', [(SPACINGS[0], 1.0), (SPACINGS[1], 2.0)])
def test_agrees_with_monai(labels, spacing, tol):
    names = sorted(labels)
    n = 0
    for name, pred, ref in perturbations(names, labels):
        ours = {r['class']: r for r in case_metrics(pred, ref, CLASSES, spacing, tolerance_mm=tol, case=name)}
        theirs = monai_scores(pred, ref, spacing, tol)
        for c in CLASSES:
            for k in ('dice', 'hd95', 'assd', 'nsd'):
                assert abs(ours[c][k] - theirs[c][k]) < 1e-6, (name, c, k, ours[c][k], theirs[c][k])
        assert min(ours[c]['dice'] for c in CLASSES) < 1 and max(ours[c]['hd95'] for c in CLASSES) > 0, (
            name
        )  # not trivial
        n += 1
    assert n == 5 * N_CASES


def test_missing_class_conventions_vs_monai(labels):
    "A prediction that misses class 2: segcore says Dice 0, NSD 0 (as MONAI), HD95/ASSD NaN (MONAI: NaN and inf)."
    ref = labels[sorted(labels)[0]]
    pred = np.where(ref == 2, 0, ref)
    ours = {r['class']: r for r in case_metrics(pred, ref, CLASSES, SPACINGS[1], tolerance_mm=2.0)}
    theirs = monai_scores(pred, ref, SPACINGS[1], 2.0)
    assert ours[2]['dice'] == theirs[2]['dice'] == 0 and ours[2]['nsd'] == theirs[2]['nsd'] == 0
    assert math.isnan(ours[2]['hd95']) and math.isnan(ours[2]['assd'])
    assert math.isnan(theirs[2]['hd95']) and math.isinf(theirs[2]['assd'])
    assert ours[1]['dice'] == 1 and ours[1]['hd95'] == 0 and ours[1]['nsd'] == 1


@pytest.mark.parametrize('spacing', SPACINGS)
def test_agrees_with_medpy(labels, spacing):
    """medpy 0.5's surfaces are the same as MONAI's (mask XOR its erosion by the face-connected cross, outside the
    image = background) and its distances come from the same EDT, so: `dc` equals our Dice exactly; `assd` (pooled
    mean of both directions, as MONAI's symmetric ASD) equals ours; `hd` equals our maximum distance. medpy's `hd95`
    is the 95th percentile of the POOLED distances, not MONAI's max of the two directed percentiles, so we check it
    against np.percentile of our pooled distance sets instead. Tolerance: ours are float32 like MONAI's, medpy's
    float64, so values may differ by float32 rounding (relative 6e-8): rel=1e-6 is ample and still catches any
    different surface voxel or distance."""
    binary = pytest.importorskip('medpy.metric.binary')
    names = sorted(labels)[:4]
    for name, pred, ref in perturbations(names, labels):
        ours = {r['class']: r for r in case_metrics(pred, ref, CLASSES, spacing)}
        for c in CLASSES:
            p, r = pred == c, ref == c
            assert ours[c]['dice'] == pytest.approx(binary.dc(p, r), abs=1e-12), (name, c)
            assert ours[c]['assd'] == pytest.approx(binary.assd(p, r, voxelspacing=spacing), rel=1e-6, abs=1e-6), (name,
                                                                                                                   c)
            assert hausdorff(p, r, spacing, percentile=None) == pytest.approx(binary.hd(p, r, voxelspacing=spacing),
                                                                              rel=1e-6), (name, c)
            pooled = np.concatenate(surface_distances(p, r, spacing)).astype(np.float64)
            assert np.percentile(pooled, 95) == pytest.approx(binary.hd95(p, r, voxelspacing=spacing), rel=1e-6,
                                                              abs=1e-6), (name, c)
