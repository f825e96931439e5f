"""2D networks: every registered model in 2D, the EfficientNet + FPN model, encoder freezing, ImageNet normalisation."""
import re

import pytest
import torch

from segcore import models
from segcore.models import (
    MODEL_EXTRAS, MODELS, EfficientNetFeatures, SpatialChannelAttention, available_models, build_model,
    check_model, check_patch_size, count_parameters, efficientnet_weights, imagenet_normalize,
)

PATCH_2D = (64, 96)   # multiples of 32: every registered model takes it (unetr: 16, swinunetr and EfficientNet: 32)


@pytest.fixture(autouse=True)
def _two_threads():
    "The CI machine has 2 cores; keep each test within them."
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize('in_channels', [1, 3])
@pytest.mark.parametrize('name', sorted(MODELS))
def test_every_model_in_2d(name, in_channels):
    if name not in available_models():
        pytest.skip(f'{name} needs {MODEL_EXTRAS[name]}, which is not installed here')
    torch.manual_seed(0)
    net = build_model(name, in_channels, 3, spatial_dims=2, size='tiny', img_size=PATCH_2D)
    logits = check_model(net, in_channels, 3, PATCH_2D, batch=2)
    assert logits.shape == (2, 3, *PATCH_2D) and torch.isfinite(logits).all()
    assert net.segcore_spec['spatial_dims'] == 2
    convs = [m for m in net.modules() if isinstance(m, torch.nn.modules.conv._ConvNd)]
    assert convs and all(len(c.kernel_size) == 2 for c in convs), 'a 3D layer in a 2D build'


def test_efficientnet_fpn_structure():
    net = build_model('efficientnet_fpn', 3, 4, spatial_dims=2, size='tiny')
    assert isinstance(net.encoder, EfficientNetFeatures) and isinstance(net.attention, SpatialChannelAttention)
    assert net.encoder.channels == (16, 24, 40, 112, 320)
    with torch.no_grad():
        feats = net.encoder(torch.randn(1, 3, 64, 96))
    assert [tuple(f.shape[1:]) for f in feats] == [(16, 32, 48), (24, 16, 24), (40, 8, 12), (112, 4, 6), (320, 2, 3)]
    plain = build_model('efficientnet_fpn', 3, 4, spatial_dims=2, size='tiny', attention=False)
    assert isinstance(plain.attention, torch.nn.Identity)
    assert count_parameters(net) - count_parameters(plain) == count_parameters(net.attention) > 0
    assert not any('_fc' in n or '_conv_head' in n for n, _ in net.named_parameters())   # no classifier head


@pytest.mark.parametrize('size, backbone, fpn', [('tiny', 'efficientnet-b0', 32), ('small', 'efficientnet-b1', 64),
                                                 ('base', 'efficientnet-b2', 128)])
def test_efficientnet_fpn_sizes(size, backbone, fpn):
    net = build_model('efficientnet_fpn', 1, 2, spatial_dims=2, size=size)
    ref = EfficientNetFeatures(backbone, in_channels=1)
    assert count_parameters(net.encoder) == count_parameters(ref)
    assert net.head.in_channels == fpn


def test_efficientnet_fpn_backbone_override_and_3d():
    net = build_model('efficientnet_fpn', 1, 2, spatial_dims=2, size='tiny', backbone='efficientnet-b3',
                      fpn_channels=16)
    assert net.encoder.channels == (24, 32, 48, 136, 384) and net.head.in_channels == 16
    check_model(net, 1, 2, (64, 64))
    check_model(build_model('efficientnet_fpn', 2, 3, spatial_dims=3, size='tiny'), 2, 3, (32, 32, 64), batch=2)


def test_efficientnet_fpn_patch_sizes():
    spec = dict(name='efficientnet_fpn', in_channels=3, out_channels=2, spatial_dims=2, size='tiny',
                img_size=[64, 64], kwargs={})
    check_patch_size(spec, [64, 64])
    check_patch_size(spec, [96, 128])
    for patch, fits in (([100, 100], '[128, 128] fits'), ([64, 80], '[64, 96] fits')):
        with pytest.raises(ValueError, match=re.escape('must be divisible by 32')) as err:
            check_patch_size(spec, patch)
        assert fits in str(err.value) and '\n' not in str(err.value)


def test_efficientnet_fpn_bad_options():
    with pytest.raises(ValueError, match='available: efficientnet-b0'):
        build_model('efficientnet_fpn', 3, 2, spatial_dims=2, backbone='resnet18')
    with pytest.raises(ValueError, match='needs spatial_dims=2'):
        build_model('efficientnet_fpn', 3, 2, spatial_dims=3, pretrained=True)


def _no_network(*args, **kwargs):
    raise AssertionError('a download was attempted')


def test_pretrained_missing_is_one_line_without_network(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    monkeypatch.setattr(models._effnet.model_zoo, 'load_url', _no_network)
    monkeypatch.setattr(torch.hub, 'download_url_to_file', _no_network)
    with pytest.raises(ValueError) as err:
        build_model('efficientnet_fpn', 3, 2, spatial_dims=2, size='tiny', pretrained=True)
    msg = str(err.value)
    assert '\n' not in msg and 'not available offline' in msg and 'efficientnet-b0-355c32eb.pth' in msg
    assert str(tmp_path / 'hub' / 'checkpoints') in msg


def _fake_imagenet_weights(tmp_path, monkeypatch):
    "Write a B0 state dict in the published file's key layout into a fresh hub cache; returns its source net."
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    torch.manual_seed(1)
    source = models._effnet.EfficientNetBNFeatures('efficientnet-b0', pretrained=False, in_channels=3)
    flat = {re.sub(r'(.+)\.\d+(\.\d+\..+)', r'\1\2', k): v for k, v in source.state_dict().items()}
    path = efficientnet_weights('efficientnet-b0')
    path.parent.mkdir(parents=True)
    torch.save(flat, path)
    monkeypatch.setattr(torch.hub, 'download_url_to_file', _no_network)
    return source


def test_pretrained_reads_the_offline_cache(tmp_path, monkeypatch):
    source = _fake_imagenet_weights(tmp_path, monkeypatch)
    torch.manual_seed(2)
    rgb = build_model('efficientnet_fpn', 3, 2, spatial_dims=2, size='tiny', pretrained=True)
    want = source.state_dict()
    for name, value in rgb.encoder.net.state_dict().items():
        assert torch.equal(value, want[name]), name
    gray = build_model('efficientnet_fpn', 1, 2, spatial_dims=2, size='tiny', pretrained=True)
    stem = gray.encoder.net._conv_stem.weight
    assert stem.shape[1] == 1
    torch.testing.assert_close(stem, want['_conv_stem.weight'].sum(1, keepdim=True))
    x = torch.rand(1, 1, 64, 64)       # a gray image gives the same stem response as its RGB replica
    with torch.no_grad():
        torch.testing.assert_close(gray.encoder.net._conv_stem(x), rgb.encoder.net._conv_stem(x.expand(1, 3, 64, 64)))
    check_model(gray, 1, 2, (64, 64))


def _step_and_compare(net, in_channels, spatial):
    "Freeze `net.encoder` as the trainer does, take one AdamW step; returns (names that moved, all parameter names)."
    net.encoder.requires_grad_(False)
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    opt = torch.optim.AdamW(net.parameters(), lr=1e-2)
    torch.manual_seed(0)
    net.train()(torch.randn(2, in_channels, *spatial)).square().mean().backward()
    opt.step()
    return {n for n, p in net.named_parameters() if not torch.equal(p, before[n])}, set(before)


@pytest.mark.parametrize('name, spatial', [('efficientnet_fpn', (64, 64)), ('attention_res_unet_se', (32, 32))])
def test_frozen_encoder_does_not_move(name, spatial):
    torch.manual_seed(0)
    net = build_model(name, 3, 2, spatial_dims=2, size='tiny')
    encoder = {f'encoder.{n}' for n, _ in net.encoder.named_parameters()}
    assert encoder, f'{name} has no encoder parameters'
    moved, names = _step_and_compare(net, 3, spatial)
    assert not moved & encoder
    assert moved == names - encoder          # every decoder parameter moved
    for p in net.encoder.parameters():
        assert p.grad is None


def test_unfrozen_encoder_moves():
    "The control: without freezing, the same step moves the encoder (so the test above can fail)."
    torch.manual_seed(0)
    net = build_model('attention_res_unet_se', 3, 2, spatial_dims=2, size='tiny')
    before = [p.detach().clone() for p in net.encoder.parameters()]
    opt = torch.optim.AdamW(net.parameters(), lr=1e-2)
    net.train()(torch.randn(2, 3, 32, 32)).square().mean().backward()
    opt.step()
    assert any(not torch.equal(p, b) for p, b in zip(net.encoder.parameters(), before))


def test_imagenet_normalize_by_hand():
    x = torch.zeros(2, 3, 2, 2)
    x[1, :, 1, 0] = torch.tensor([1.0, 0.5, 0.0])
    y = imagenet_normalize(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    want = torch.tensor([(1.0 - 0.485) / 0.229, (0.5 - 0.456) / 0.224, (0.0 - 0.406) / 0.225])
    torch.testing.assert_close(y[1, :, 1, 0], want)
    torch.testing.assert_close(y[0, :, 0, 0], torch.tensor([-0.485 / 0.229, -0.456 / 0.224, -0.406 / 0.225]))
    torch.testing.assert_close(imagenet_normalize(x[1]), y[1])              # unbatched (3, H, W)


@pytest.mark.parametrize('bad, says', [(torch.zeros(1, 1, 4, 4), 'RGB images'), (torch.zeros(3, 4), 'RGB images'),
                                       (torch.zeros(1, 3, 4, 4, dtype=torch.uint8), 'divide by 255'),
                                       (torch.full((1, 3, 4, 4), 200.0), 'divide by 255')])
def test_imagenet_normalize_refuses(bad, says):
    with pytest.raises(ValueError, match=says):
        imagenet_normalize(bad)
