"""segcore.tiles: grid coverage, jitter, positive-tile ratio, determinism, mosaic images without whole-image copies,
blended tile prediction against MONAI; segcore.bench.bench_eval_memory at tiny N."""
import json
import math
import tracemalloc

import numpy as np
import pytest
import torch
from monai.data.utils import dense_patch_slices
from monai.inferers import sliding_window_inference

from segcore.pipeline import Prepared
from segcore.tiles import TileSampler, check_tiling, predict_tiles, tile_grid, tile_overlap


def case(label, channels=1, seed=0, cid='c'):
    img = np.random.default_rng(seed).standard_normal((channels,) + label.shape).astype(np.float32)
    return Prepared(cid, img, label, np.eye(4), label.shape, np.eye(4))


@pytest.mark.parametrize('shape,tile,stride', [((100, 130), (32, 32), (24, 24)), ((64, 64), (32, 32), (32, 32)),
                                               ((20, 50), (32, 32), (16, 16)), ((37, 41, 29), (16, 16, 8), (10, 7, 8)),
                                               ((1000, 1500), (256, 256), (200, 256))])
def test_grid_covers_every_pixel_with_the_expected_count(shape, tile, stride):
    g = tile_grid(shape, tile, stride)
    expected = math.prod(math.ceil(max(s - t, 0) / st) + 1 for s, t, st in zip(shape, tile, stride))
    assert len(g) == expected
    hits = np.zeros(shape, np.int32)
    for o in g:
        assert all(0 <= v <= max(s - t, 0) for v, s, t in zip(o, shape, tile))              # inside (or padded)
        hits[tuple(slice(v, v + t) for v, t in zip(o, tile))] += 1
    assert hits.min() >= 1                                                                   # every pixel covered
    # the same windows as MONAI's sliding window (for images at least a tile large)
    if all(s >= t for s, t in zip(shape, tile)):
        ref = sorted(tuple(sl.start for sl in w) for w in dense_patch_slices(shape, tile, stride))
        assert sorted(map(tuple, g.tolist())) == ref


def test_known_counts_and_bad_input():
    assert len(tile_grid((100, 130), [32, 32], 24)) == 4 * 6
    assert len(tile_grid((1000, 1500), [256, 256], 128)) == 7 * 11
    for kw, msg in [(dict(stride=0), 'stride must be at least 1'), (dict(stride=40), 'larger than the tile'),
                    (dict(jitter=-1), 'jitter must be 0 or more'), (dict(stride=[8]), 'one per spatial axis')]:
        with pytest.raises(ValueError, match=msg): check_tiling([32, 32], **kw)
    lab = np.zeros((40, 40), np.uint8)
    for kw, msg in [(dict(tile_size=[8, 8, 8]), 'is 3D but the image is 2D'), (dict(pos_tile_prob=1.5), r'\[0, 1\]'),
                    (dict(pos_tile_prob='a'), 'pos_tile_prob'), (dict(jitter=-2), 'jitter must be 0'),
                    (dict(max_tiles_per_image=0), 'max_tiles_per_image'), (dict(tile_size=0), 'one size per')]:
        with pytest.raises(ValueError, match=msg): TileSampler([case(lab)], **{'tile_size': [8, 8], **kw})
    with pytest.raises(ValueError, match='no labelled case'):
        TileSampler([Prepared('u', np.zeros((1, 8, 8), np.float32), None, np.eye(4), (8, 8), np.eye(4))], [8, 8])


def test_jitter_stays_within_bounds_and_inside_the_image():
    lab = np.zeros((90, 120), np.uint8)
    ts = TileSampler([case(lab)], [32, 32], 24, jitter=(5, 3))
    rng, offsets = np.random.default_rng(0), []
    for _ in range(40):
        ts.sample(8, rng)
        for i, t, o in ts.last_origins:
            d = np.array(o) - ts.grids[i][t]
            assert (np.abs(d) <= (5, 3)).all() and (np.array(o) >= 0).all() and (np.array(o) <= (58, 88)).all()
            offsets.append(d)
    offsets = np.array(offsets)
    assert offsets[:, 0].min() == -5 and offsets[:, 0].max() == 5 and offsets[:, 1].max() == 3   # the range is used
    assert len(ts) == len(ts.grids[0]) == 4 * 5


@pytest.mark.parametrize('p', [0.25, 0.7])
def test_positive_tile_ratio_matches_pos_tile_prob(p):
    """6000 tiles of 3 images (some foreground in a few tiles each); the share of sampled label tiles that hold
    foreground is p ± 0.03 (binomial sd ≈ 0.006: a 5-sd tolerance), seed fixed."""
    labs = []
    for k, shape in enumerate([(200, 260), (128, 300), (400, 150)]):
        lab = np.zeros(shape, np.uint8)
        lab[10 + 20 * k:30 + 20 * k, 40:60] = 1
        lab[shape[0] - 30:shape[0] - 20, shape[1] - 15:shape[1] - 5] = 2
        labs.append(case(lab, seed=k, cid=str(k)))
    ts = TileSampler(labs, [48, 48], 32, jitter=6, max_tiles_per_image=12, pos_tile_prob=p)
    rng = np.random.default_rng(123)
    pos = []
    for _ in range(120):
        y = ts.sample(50, rng)[1]
        pos += (y > 0).flatten(1).any(1).tolist()
    assert len(pos) == 6000
    assert abs(np.mean(pos) - p) < 0.03, np.mean(pos)


def test_max_tiles_per_image_per_epoch():
    a, b = np.zeros((200, 200), np.uint8), np.zeros((40, 40), np.uint8)
    a[50:60, 50:60] = 1
    ts = TileSampler([case(a, cid='a'), case(b, cid='b')], [32, 32], 16, max_tiles_per_image=7)
    assert len(ts) == 7 + 4                                                       # b: 2 × 2 tiles < 7
    ts.sample(len(ts), np.random.default_rng(0))                                  # exactly one epoch
    per = np.bincount([i for i, _, _ in ts.last_origins], minlength=2)
    assert per.tolist() == [7, 4] and ts.epoch == 1
    tiles_b = sorted(t for i, t, _ in ts.last_origins if i == 1)
    assert tiles_b == [0, 1, 2, 3]                                                # no repetition while the pool lasts
    ts.sample(1, np.random.default_rng(0))
    assert ts.epoch == 2


def test_deterministic_for_a_generator_and_resumable():
    lab = np.zeros((150, 170), np.uint8)
    lab[30:50, 100:130] = 1
    c = case(lab, channels=3)
    def batches(seed, n=3):
        ts = TileSampler([c], [40, 40], 30, jitter=4, max_tiles_per_image=5, pos_tile_prob=0.5)
        rng = np.random.default_rng(seed)
        return [ts.sample(4, rng) for _ in range(n)]
    a, b, other = batches(7), batches(7), batches(8)
    for (xa, ya), (xb, yb) in zip(a, b):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert not all(torch.equal(x, y) for (x, _), (y, _) in zip(a, other))
    ts = TileSampler([c], [40, 40], 30, jitter=4, max_tiles_per_image=5)
    rng = np.random.default_rng(3)
    ts.sample(3, rng)
    state, rs = ts.state_dict(), rng.bit_generator.state
    nxt = ts.sample(6, rng)
    ts2 = TileSampler([c], [40, 40], 30, jitter=4, max_tiles_per_image=5)
    ts2.load_state_dict(json.loads(json.dumps(state)))                           # survives a JSON/checkpoint trip
    rng.bit_generator.state = rs
    assert torch.equal(ts2.sample(6, rng)[0], nxt[0])


def test_shapes_2d_3d_and_padding_of_small_images():
    lab3 = np.zeros((20, 30, 12), np.uint8)
    lab3[5:9, 5:9, 2:5] = 1
    ts = TileSampler([case(lab3, channels=2)], [16, 16, 16], (8, 8, 16), jitter=2)
    x, y = ts.sample(5, np.random.default_rng(0))
    assert x.shape == (5, 2, 16, 16, 16) and x.dtype == torch.float32
    assert y.shape == (5, 1, 16, 16, 16) and y.dtype == torch.int64
    for k, (i, t, o) in enumerate(ts.last_origins):                               # depth 12 < 16: padded with 0
        assert o[2] == 0 and (x[k, :, :, :, 12:] == 0).all() and (y[k, 0, :, :, 12:] == 0).all()
        assert torch.equal(x[k, :, :, :, :12], torch.from_numpy(ts.cases[0].image[:, o[0]:o[0] + 16, o[1]:o[1] + 16]))
    small = np.zeros((10, 12), np.uint8)
    x, y = TileSampler([case(small)], [32, 32]).sample(2, np.random.default_rng(0))
    assert x.shape == (2, 1, 32, 32) and (x[:, :, 10:] == 0).all() and (x[:, :, :, 12:] == 0).all()


def test_mosaic_image_sampled_without_copying_the_whole_image():
    "A 1000 × 1500 × 3 image: each tile is a window copy; numpy's peak allocation stays far below the image."
    lab = np.zeros((1000, 1500), np.uint8)
    lab[400:600, 700:900] = 1
    c = case(lab, channels=3)
    assert c.image.nbytes == 18_000_000
    ts = TileSampler([c], [128, 128], 96, jitter=16, max_tiles_per_image=50, pos_tile_prob=0.5)
    rng = np.random.default_rng(0)
    ts.sample(4, rng)                                                            # the epoch list is drawn first
    tracemalloc.start()
    x, y = ts.sample(4, rng)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < c.image.nbytes / 10, peak                                      # 4 tiles ≈ 0.8 MB ≪ 18 MB
    for k, (_, _, (r, q)) in enumerate(ts.last_origins):
        assert torch.equal(x[k], torch.from_numpy(c.image[:, r:r + 128, q:q + 128]))
        assert torch.equal(y[k, 0], torch.from_numpy(lab[r:r + 128, q:q + 128]).long())


def _conv_model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
                               torch.nn.Conv2d(8, 2, 5, padding=2))


@pytest.mark.parametrize('shape,tile,stride', [((100, 130), (32, 32), (24, 24)), ((90, 77), (40, 32), (30, 16))])
def test_predict_tiles_equals_monai_sliding_window(shape, tile, stride):
    model = _conv_model().eval()
    im = torch.randn(3, *shape)
    ours = predict_tiles(model, im, tile, stride)
    overlap = [1 - s / t for s, t in zip(stride, tile)]
    with torch.no_grad():
        ref = sliding_window_inference(im[None], tile, 4, model, overlap=overlap, mode='gaussian')[0]
    assert ours.shape == (2, *shape)
    assert torch.allclose(ours, ref, atol=1e-5), (ours - ref).abs().max()
    assert [int(t * (1 - o)) for t, o in zip(tile, tile_overlap(tile, stride))] == list(stride)


def test_constant_model_gives_a_constant_map_without_seams():
    model = torch.nn.Conv2d(3, 2, 3, padding=1)
    with torch.no_grad():
        model.weight.zero_()
        model.bias.copy_(torch.tensor([0.3, -1.7]))
    for shape in [(150, 170), (40, 50)]:                                          # the second is smaller than a tile
        out = predict_tiles(model, torch.randn(3, *shape), (64, 64), 40)
        assert out.shape == (2, *shape)
        assert (out[0] - 0.3).abs().max() < 1e-5 and (out[1] + 1.7).abs().max() < 1e-5


def test_bench_eval_memory_records_peak_rss_per_n(tmp_path):
    from segcore.bench import bench_eval_memory, write_bench
    r = bench_eval_memory(n_images=(20, 60), size=(32, 32), progress=False)
    assert r['kind'] == 'eval-memory' and 'synthetic' in r['data']
    assert [row['n_images'] for row in r['runs']] == [20, 60]
    for row in r['runs']:
        assert row['n_scored'] == row['n_images'] and row['peak_rss_mb'] >= row['baseline_rss_mb'] > 0
        assert row['seconds'] > 0 and row['images_per_s'] > 0 and 0 < row['mean_foreground_dice'] < 1
    assert 'peak_rss_growth_mb_per_1000' in r
    j, h = write_bench(r, tmp_path)
    rec = json.loads(j.read_text())
    assert rec['device_info']['type'] in ('cpu', 'cuda') and rec['environment']['versions'] and rec['date']
    assert 'synthetic' in h.read_text() and 'peak' in h.read_text()
