"""The binary 2D workflow: edge-weighted BCE, focal-Tversky on 2D, a validation-tuned probability threshold and
adaptive morphology, checked against hand values, torch and scipy references."""
import json, math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage as ndi

from segcore.infer import load_postprocessing
from segcore.core import DataError
from segcore.losses import LOSSES, EdgeBCE, FocalTversky, build_loss, morphological_gradient, one_hot
from segcore.postprocess import (Postprocessor, adaptive_erosion, binary_mask, choose_postprocessing, dice,
                                 threshold_per_class, tune_threshold)

GRID = np.linspace(0.05, 0.95, 19)


def _logit(p): return math.log(p / (1 - p))


def _square_target(shape, lo, hi):
    "Label map (1, 1, *shape) with a foreground box [lo, hi) on every axis."
    t = torch.zeros((1, 1, *shape), dtype=torch.long)
    t[(0, 0, *[slice(lo, hi)] * len(shape))] = 1
    return t


# ---------------------------------------------------------------- edge-weighted BCE

def test_edge_bce_is_registered_and_configurable():
    assert LOSSES['edge_bce'] is EdgeBCE
    loss = build_loss({'edge_bce': 1.0, 'dice': 1.0}, 2, edge_bce={'w': 2.0})
    assert loss.terms['edge_bce'].w == 2.0
    assert EdgeBCE().w == 5.0
    for bad in (-1, float('nan'), 'big', True):
        with pytest.raises(ValueError, match='edge weight w must be a finite number >= 0') as e:
            EdgeBCE(w=bad)
        assert '\n' not in str(e.value)


@pytest.mark.parametrize('shape', [(7, 9), (5, 6, 4)])
@pytest.mark.parametrize('k', [2, 3])
def test_edge_bce_w0_is_plain_bce(shape, k):
    g = torch.Generator().manual_seed(k + len(shape))
    logits = torch.randn(2, k, *shape, generator=g) * 2
    target = torch.randint(0, k, (2, 1, *shape), generator=g)
    probs = logits.softmax(1)[:, 1:]
    ref = F.binary_cross_entropy(probs, one_hot(target, k)[:, 1:])
    torch.testing.assert_close(EdgeBCE(w=0.0)(logits, target), ref, rtol=1e-6, atol=1e-6)
    assert EdgeBCE(w=3.0)(logits, target) > ref                     # there are edges, so weighting adds


def test_edge_bce_hand_value_1d_and_softmax():
    # strip [0, 0, 0, 1, 1]: edge pixels 2 and 3 (3^1 neighbourhood holds both labels; padding ignored)
    p = [0.5, 0.75, 0.25, 0.5, 0.75]
    y = [0, 0, 0, 1, 1]
    target = torch.tensor(y).view(1, 1, 5)
    bg = 1.3                                                          # softmax: a background logit shift cancels
    logits = torch.tensor([[[bg] * 5, [bg + _logit(q) for q in p]]])
    bce = [-math.log(q) if t else -math.log(1 - q) for q, t in zip(p, y)]
    weights = [1, 1, 6, 6, 1]                                         # 1 + 5 · edge
    want = sum(w * b for w, b in zip(weights, bce)) / 5
    assert abs(float(EdgeBCE()(logits, target)) - want) < 1e-6
    assert abs(want - (9 * math.log(2) + 7 * math.log(4 / 3)) / 5) < 1e-12   # the same, simplified by hand
    half = sum((1 + 0.5 * (w > 1)) * b for w, b in zip(weights, bce)) / 5       # w = 0.5: edge weight 1.5
    assert abs(float(EdgeBCE(w=0.5)(logits, target)) - half) < 1e-6


def test_edge_bce_hand_value_2d():
    # 3×4 image, foreground the 2×2 block at rows 0-1, cols 2-3 (in the corner: the image border is not an edge,
    # so the corner pixel (0, 3), whose in-image neighbours are all foreground, survives the erosion)
    target = torch.zeros(1, 1, 3, 4, dtype=torch.long)
    target[0, 0, 0:2, 2:4] = 1
    edge = morphological_gradient(target.float())[0, 0]
    want_edge = torch.tensor([[0., 1, 1, 0], [0, 1, 1, 1], [0, 1, 1, 1]])
    torch.testing.assert_close(edge, want_edge)
    logits = torch.zeros(1, 2, 3, 4)                                   # p = 0.5 everywhere: BCE = ln 2 per pixel
    want = (4 * 1 + 8 * 6) * math.log(2) / 12
    assert abs(float(EdgeBCE()(logits, target)) - want) < 1e-6


@pytest.mark.parametrize('shape', [(8, 8), (6, 7, 5)])
def test_morphological_gradient_matches_scipy(shape):
    rng = np.random.default_rng(len(shape))
    masks = ndi.median_filter(rng.random((3, *shape)) > 0.5, size=(1,) + (3,) * len(shape))
    box = np.ones((1,) + (3,) * len(shape), bool)
    ref = ndi.binary_dilation(masks, box) & ~ndi.binary_erosion(masks, box, border_value=1)
    got = morphological_gradient(torch.from_numpy(masks[:, None]).float())[:, 0].numpy()
    np.testing.assert_array_equal(got, ref.astype(np.float32))
    assert 0 < ref.mean() < 1


@pytest.mark.parametrize('shape', [(16, 16), (10, 10, 10)])
def test_edge_bce_gradients_finite(shape):
    g = torch.Generator().manual_seed(0)
    target = torch.randint(0, 3, (2, 1, *shape), generator=g)
    for scale in (1.0, 60.0):                                          # ordinary and saturated logits
        logits = (torch.randn(2, 3, *shape, generator=g) * scale).requires_grad_()
        out = EdgeBCE()(logits, target)
        out.backward()
        assert torch.isfinite(out) and torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


@pytest.mark.parametrize('shape', [(12, 12), (10, 10, 10)])
def test_edge_errors_cost_more_than_interior_errors(shape):
    target = _square_target(shape, 3, 8)
    y = target[:, 0].bool()
    edge = morphological_gradient(target.float())[:, 0].bool()
    good = torch.where(y, 4.0, -4.0)                                    # confident and right everywhere
    n = 6
    edge_idx = edge.flatten().nonzero()[:n, 0]
    inner_idx = (~edge).flatten().nonzero()[:n, 0]
    assert len(edge_idx) == len(inner_idx) == n

    def with_errors(idx):
        fg = good.flatten().clone()
        fg[idx] = -fg[idx]                                             # the same confident mistake, n pixels
        return torch.stack([torch.zeros_like(good), fg.view(good.shape)], 1)

    at_edge, inside = with_errors(edge_idx), with_errors(inner_idx)
    torch.testing.assert_close(EdgeBCE(w=0.)(at_edge, target), EdgeBCE(w=0.)(inside, target))
    assert EdgeBCE()(at_edge, target) > 2 * EdgeBCE()(inside, target)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='no GPU')
def test_edge_bce_on_gpu():
    target = _square_target((12, 12), 3, 8)
    logits = torch.randn(1, 2, 12, 12)
    out = EdgeBCE()(logits.cuda(), target.cuda())
    assert out.device.type == 'cuda'
    torch.testing.assert_close(out.cpu(), EdgeBCE()(logits, target), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- focal Tversky on 2D

def test_focal_tversky_2d_by_hand():
    g = torch.Generator().manual_seed(5)
    logits = torch.randn(2, 2, 6, 5, generator=g)
    target = torch.randint(0, 2, (2, 1, 6, 5), generator=g)
    p = logits.softmax(1)[:, 1]
    y = target[:, 0].float()
    s, want = 1e-5, []
    for b in range(2):
        tp, fp, fn = (p[b] * y[b]).sum(), (p[b] * (1 - y[b])).sum(), ((1 - p[b]) * y[b]).sum()
        ti = (tp + s) / (tp + 0.3 * fp + 0.7 * fn + s)
        want.append((1 - ti) ** 0.75)
    torch.testing.assert_close(FocalTversky()(logits, target), torch.stack(want).mean(), rtol=1e-5, atol=1e-6)
    perfect = one_hot(target, 2) * 40 - 20
    assert float(FocalTversky()(perfect, target)) < 1e-3
    lg = logits.clone().requires_grad_()
    FocalTversky()(lg, target).backward()
    assert torch.isfinite(lg.grad).all() and lg.grad.abs().sum() > 0


def test_focal_tversky_2d_in_a_compound():
    target = _square_target((16, 16), 4, 11)
    loss = build_loss({'focal_tversky': 1.0, 'edge_bce': 0.5}, 2)
    logits = torch.randn(1, 2, 16, 16, requires_grad=True)
    out = loss(logits, target)
    out.backward()
    assert set(loss.last) == {'focal_tversky', 'edge_bce'} and all(math.isfinite(v) for v in loss.last.values())
    assert abs(float(out.detach()) - (loss.last['focal_tversky'] + 0.5 * loss.last['edge_bce'])) < 1e-5


# ---------------------------------------------------------------- threshold tuned on validation

def test_tune_threshold_finds_a_known_optimum():
    rng = np.random.default_rng(0)
    probs = [rng.random((16, 16)) for _ in range(8)]                  # 2D slices
    out = tune_threshold(probs, [p > 0.3 for p in probs])
    assert out['threshold'] == pytest.approx(0.3, abs=1e-12) and out['score'] == 1.0 and out['n'] == 8
    assert list(out['curve']) == pytest.approx(list(GRID))
    assert max(v for t, v in out['curve'].items() if abs(t - 0.3) > 1e-9) < 1
    off = tune_threshold(probs, [p > 0.32 for p in probs])            # optimum between grid points
    assert abs(off['threshold'] - 0.32) <= 0.05 + 1e-12
    vol = [rng.random((6, 8, 5)) for _ in range(3)]                   # 3D volumes work the same
    assert tune_threshold(vol, [v > 0.7 for v in vol])['threshold'] == pytest.approx(0.7)


@pytest.mark.parametrize('metric', ['dice', 'iou'])
def test_tune_threshold_curve_is_the_mean_per_case_score(metric):
    rng = np.random.default_rng(1)
    probs = [ndi.gaussian_filter(rng.random((20, 18)), 2) for _ in range(4)] + [np.zeros((20, 18))]
    probs = [(p - p.min()) / (np.ptp(p) or 1) for p in probs]
    targets = [ndi.gaussian_filter(rng.random((20, 18)), 2) > 0.5 for _ in range(4)] + [np.zeros((20, 18), bool)]
    out = tune_threshold(probs, targets, metric=metric)

    def score(pred, ref):
        if metric == 'dice': return dice(pred, ref.astype(np.uint8), 1)
        union = np.logical_or(pred, ref).sum()
        return np.logical_and(pred, ref).sum() / union if union else 1.0

    assert len(out['curve']) == len(GRID)
    for t, (key, value) in zip(GRID, out['curve'].items()):
        brute = np.mean([score(binary_mask(p, t), y) for p, y in zip(probs, targets)])
        assert key == pytest.approx(t) and value == pytest.approx(brute, abs=1e-12)
    assert out['score'] == max(out['curve'].values())


def test_tune_threshold_ties_go_to_the_threshold_closest_to_half():
    # two pixels, background at `lo` and foreground at `hi` (off the grid): every t in (lo, hi] is perfect
    chosen = []
    for lo in 0.01 + 0.05 * np.arange(15):
        hi = lo + 0.2
        p, y = np.array([lo, hi]), np.array([0, 1])
        perfect = GRID[(GRID > lo) & (GRID <= hi)]
        assert len(perfect) == 4
        want = perfect[np.argmin(np.abs(perfect - 0.5))]
        got = tune_threshold([p], [y])['threshold']
        assert got == pytest.approx(want)
        chosen.append(got)
    assert chosen == sorted(chosen)                                   # monotone in the position of the tie set
    assert 0.5 in chosen
    assert tune_threshold([np.array([0.1, 0.9])], [np.array([0, 1])], thresholds=[0.55, 0.45])['threshold'] == 0.45


@pytest.mark.parametrize('call, msg', [
    (lambda p, y: tune_threshold(p, y[:1]), 'as many targets'),
    (lambda p, y: tune_threshold([], []), 'as many targets'),
    (lambda p, y: tune_threshold([p[0] + 1], y[:1]), 'in [0, 1]'),
    (lambda p, y: tune_threshold([p[0][:3]], y[:1]), 'differ in shape'),
    (lambda p, y: tune_threshold(p, [2 * t for t in y]), 'binary mask'),
    (lambda p, y: tune_threshold(p, y, metric='hausdorff'), 'metric must be one of'),
    (lambda p, y: tune_threshold(p, y, thresholds=[]), 'thresholds must be'),
    (lambda p, y: tune_threshold([(p[0] > 0.5)], y[:1]), 'must be floats'),
])
def test_tune_threshold_bad_input_is_one_clear_error(call, msg):
    rng = np.random.default_rng(2)
    probs = [rng.random((5, 5)) for _ in range(2)]
    targets = [(p > 0.5).astype(np.uint8) for p in probs]
    with pytest.raises(ValueError, match=msg.replace('[', r'\[').replace(']', r'\]')) as e:
        call(probs, targets)
    assert '\n' not in str(e.value)


def test_binary_threshold_step():
    rng = np.random.default_rng(3)
    p1 = rng.random((2, 9, 11))                                        # (B, H, W): a batch of slices
    for fg in p1:
        probs = np.stack([1 - fg, fg])
        np.testing.assert_array_equal(binary_mask(fg, 0.35), (fg >= 0.35).astype(np.uint8))
        pp = Postprocessor([{'name': 'binary_threshold', 'params': {'threshold': 0.35}}])
        np.testing.assert_array_equal(pp(probs), threshold_per_class(probs, {1: 0.35}))
        assert Postprocessor.from_json(pp.to_json()) == pp and pp.needs_probs
    with pytest.raises(ValueError, match='needs probabilities'):
        pp(np.zeros((9, 11), np.uint8))
    with pytest.raises(ValueError, match='binary task'):
        pp(np.full((3, 4, 4), 1 / 3))
    for bad in (-0.1, 1.5, 'half', None, float('nan')):
        with pytest.raises(ValueError, match=r'threshold must be a number in \[0, 1\]') as e:
            Postprocessor.from_dict({'steps': [{'name': 'binary_threshold', 'params': {'threshold': bad}}]})
        assert '\n' not in str(e.value)


# ---------------------------------------------------------------- adaptive morphology

def _hand_map_2d():
    "Label map (20, 24): class 1 = a big blob with a thin spur + a 3×3 square; class 2 = a big 6×7 block + 2 pixels."
    lab = np.zeros((20, 24), np.uint8)
    lab[2:10, 2:12] = 1
    lab[5, 12:17] = 1                                                  # spur: opening removes it
    lab[15:18, 2:5] = 1                                                # 9 pixels: small
    lab[11:17, 14:21] = 2                                              # 42 pixels
    lab[0, 22:24] = 2                                                  # 2 pixels: small
    return lab


@pytest.mark.parametrize('op, ref_op', [('erode', ndi.binary_erosion), ('open', ndi.binary_opening)])
@pytest.mark.parametrize('shape', ['ball', 'box'])
def test_adaptive_morphology_matches_scipy_2d(op, ref_op, shape):
    lab = _hand_map_2d()
    se = ndi.generate_binary_structure(2, 1 if shape == 'ball' else 2)
    out = adaptive_erosion(lab, min_size_voxels=20, op=op, shape=shape)
    for k in (1, 2):
        comp, n = ndi.label(lab == k, np.ones((3, 3)))
        sizes = np.bincount(comp.ravel())
        for c in range(1, n + 1):
            m = comp == c
            if sizes[c] > 20:
                want = ref_op(m, se)
                assert want[m].any()
                np.testing.assert_array_equal(out[m] == k, want[m])    # shrinks exactly like scipy
            else:
                np.testing.assert_array_equal(out[m], lab[m])          # small: untouched
    assert (out[lab == 0] == 0).all()
    assert (out[lab == 1] == 0).any()                                 # the spur goes with every op and shape
    only1 = adaptive_erosion(lab, min_size_voxels=20, op=op, shape=shape, classes=[1])
    np.testing.assert_array_equal(only1[lab == 2], lab[lab == 2])      # per class
    np.testing.assert_array_equal(only1[lab == 1], out[lab == 1])


def test_adaptive_morphology_matches_scipy_3d_and_mm():
    lab = np.zeros((12, 12, 12), np.uint8)
    lab[1:7, 1:7, 1:8] = 1                                             # 252 voxels
    lab[9:11, 9:11, 9:11] = 1                                          # 8 voxels
    big = np.zeros(lab.shape, bool)
    big[1:7, 1:7, 1:8] = True
    se = np.ones((3, 3, 3), bool)
    want = np.where(big, ndi.binary_erosion(big, se), lab == 1).astype(np.uint8)
    np.testing.assert_array_equal(adaptive_erosion(lab, min_size_voxels=8, shape='box'), want)
    # in mm³ with 0.5 × 1 × 2 mm voxels (1 mm³ each): the 8-voxel cube is 8 mm³
    np.testing.assert_array_equal(adaptive_erosion(lab, min_size_mm3=8, spacing=(0.5, 1, 2), shape='box'), want)
    assert (adaptive_erosion(lab, min_size_mm3=300, spacing=(0.5, 1, 2)) == lab).all()
    pp = Postprocessor([('adaptive_erosion', {'min_size_mm3': 8, 'shape': 'box'})])
    np.testing.assert_array_equal(pp(lab, spacing=(0.5, 1, 2)), want)  # the Postprocessor hands over the spacing
    with pytest.raises(ValueError, match='sized in mm³'):
        pp(lab)
    # 2D in mm²: the 9-pixel square is 2.25 mm² at 0.5 mm pixels
    lab2 = _hand_map_2d()
    assert (adaptive_erosion(lab2, min_size_mm3=2.25, spacing=(0.5, 0.5))[15:18, 2:5] == 1).all()
    eroded = adaptive_erosion(lab2, min_size_mm3=2.2, spacing=(0.5, 0.5))
    np.testing.assert_array_equal(eroded[15:18, 2:5], [[0, 0, 0], [0, 1, 0], [0, 0, 0]])   # 3×3 → its centre


@pytest.mark.parametrize('params, msg', [
    ({'min_size_voxels': -1}, 'min_size_voxels must be a finite number >= 0'),
    ({'min_size_voxels': 'big'}, 'min_size_voxels must be a finite number >= 0'),
    ({}, 'give exactly one of min_size_voxels and min_size_mm3'),
    ({'min_size_voxels': 5, 'min_size_mm3': 5}, 'give exactly one'),
    ({'min_size_voxels': 5, 'op': 'dilate'}, 'op must be one of'),
    ({'min_size_voxels': 5, 'radius': 1.5}, 'radius must be a whole number'),
    ({'min_size_voxels': 5, 'shape': 'disk'}, "shape must be 'ball' or 'box'"),
    ({'min_size_voxels': 5, 'keep_vanishing': 'yes'}, 'keep_vanishing must be true or false'),
    ({'min_size': 5}, "has no parameter 'min_size'"),
])
def test_adaptive_morphology_bad_parameter_is_one_clear_error(params, msg, tmp_path):
    spec = {'steps': [{'name': 'adaptive_erosion', 'params': params}]}
    with pytest.raises(ValueError, match=msg) as e:
        Postprocessor.from_dict(spec)
    assert '\n' not in str(e.value)
    if 'min_size' not in params:                                      # the function itself says the same
        with pytest.raises(ValueError, match=msg):
            adaptive_erosion(_hand_map_2d(), **params)
    f = tmp_path / 'pp.json'                                          # what predict says about such a file
    f.write_text(json.dumps(spec))
    with pytest.raises(DataError, match='not a valid post-processing file'):
        load_postprocessing(None, f, 2, 2)


def test_adaptive_morphology_serialises_and_loads(tmp_path):
    pp = Postprocessor().add('adaptive_erosion', min_size_voxels=np.int64(20), op='open', classes=(1,))
    f = pp.save(tmp_path / 'postprocessing.json')
    assert json.loads(f.read_text())['steps'] == [
        {'name': 'adaptive_erosion', 'params': {'min_size_voxels': 20, 'op': 'open', 'classes': [1]}}]
    loaded = load_postprocessing(None, f, 2, 2)                       # infer's loader accepts it as it is
    assert loaded == pp
    np.testing.assert_array_equal(loaded(_hand_map_2d()), adaptive_erosion(_hand_map_2d(), 20, op='open', classes=1))
    tf = tmp_path / 'threshold.json'                                   # infer applies probability steps first
    tf.write_text(json.dumps({'steps': [{'name': 'binary_threshold', 'params': {'threshold': 0.4}}]}))
    th = load_postprocessing(None, tf, 2, 2)
    probs = np.stack([1 - _hand_map_2d() * 0.5, _hand_map_2d() * 0.5]).astype(np.float32)   # foreground p = 0.5
    assert th.needs_probs and th(probs).sum() == _hand_map_2d().astype(bool).sum()


def test_the_chooser_tries_adaptive_morphology():
    preds, refs = [], []
    for seed in range(3):
        r, c = np.random.default_rng(seed).integers(2, 8, 2)
        ref = np.zeros((32, 32), np.uint8)
        ref[r:r + 12, c:c + 10] = 1
        pred = ndi.binary_dilation(ref, ndi.generate_binary_structure(2, 1)).astype(np.uint8)   # one pixel too wide
        ref[27:30, 27:30] = 1
        pred[27:30, 27:30] = 1                                         # small lesion, exact
        preds.append(pred)
        refs.append(ref)
    pp, rep = choose_postprocessing(preds, refs, None, candidates=('keep_largest_component', 'adaptive_erosion'),
                                    erosion_sizes=(30, 5000))
    assert pp.steps == [{'name': 'adaptive_erosion', 'params': {'min_size_voxels': 30, 'classes': [1]}}]
    assert [(r['step'], r['params'].get('min_size_voxels'), r['kept']) for r in rep] == [
        ('keep_largest_component', None, False), ('adaptive_erosion', 30, True), ('adaptive_erosion', 5000, False)]
    for p, r in zip(preds, refs): np.testing.assert_array_equal(pp(p), r)
    with pytest.raises(ValueError, match="has no parameter 'size'"):
        choose_postprocessing(preds, refs, [1], candidates=[('adaptive_erosion', {'size': 5})])
