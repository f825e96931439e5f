"""Reliability: determinism, seed spread, clear errors for output problems, and static security checks."""
import ast
import pytest
from conftest import segcore, read_json, REPO

TINY = ['--profile', 'tiny', '--set', 'iterations_per_epoch=2', '--set', 'num_threads=1']


def _hist(run):
    return [
        {k: v for k, v in r.items() if k not in ('seconds', 'samples_per_s')} for r in read_json(run / 'history.json')
    ]


def test_same_seed_same_cpu_bit_identical_metrics(tmp_path):
    for name in ('a', 'b'): segcore('train', '--data', 'phantom', '--out', tmp_path / name, '--quiet', *TINY)
    assert _hist(tmp_path / 'a') == _hist(tmp_path / 'b')
    assert read_json(tmp_path / 'a/summary.json')['validation'] == read_json(tmp_path / 'b/summary.json')['validation']


def test_sampling_on_the_device_trains_bit_identically(tmp_path):
    "The GPU path's device-resident sampler (run here on the CPU) gives the same batches, so the same run."
    segcore('train', '--data', 'phantom', '--out', tmp_path / 'host', '--quiet', *TINY)
    segcore('train', '--data', 'phantom', '--out', tmp_path / 'dev', '--quiet', *TINY, '--set', 'sample_on_device=true')
    assert read_json(tmp_path / 'dev/config.json')['sample_on_device'] is True
    assert _hist(tmp_path / 'host') == _hist(tmp_path / 'dev')
    assert (
        read_json(tmp_path / 'host/summary.json')['validation']
        == read_json(tmp_path / 'dev/summary.json')['validation']
    )


def test_seeds_report_mean_and_sd(tmp_path):
    r = segcore('train', '--data', 'phantom', '--out', tmp_path / 's', '--quiet', '--seeds', '2', *TINY)
    s = read_json(tmp_path / 's/seeds_summary.json')
    assert s['n_seeds'] == 2 and sorted(s['per_seed']) == ['0', '1']
    vals = [v['mean_foreground_dice'] for v in s['per_seed'].values()]
    assert s['mean_foreground_dice']['mean'] == pytest.approx(sum(vals) / 2)
    assert s['mean_foreground_dice']['n_seeds'] == 2 and '±' in r.stdout and '(2 seeds)' in r.stdout
    assert (tmp_path / 's/seed-0/best.pt').exists() and (tmp_path / 's/seed-1/best.pt').exists()


def test_output_path_that_is_a_file_is_a_clear_error(tmp_path):
    f = tmp_path / 'occupied'
    f.write_text('keep me')
    r = segcore('train', '--data', 'phantom', '--out', f, '--quiet', *TINY, check=False)
    assert r.returncode == 2 and 'occupied' in r.stderr and 'Traceback' not in r.stderr
    assert f.read_text() == 'keep me'
    from segcore.sources import resolve_data
    data = resolve_data('phantom', progress=False).path
    r = segcore('audit', data, '--json', f / 'a.json', '--quiet', check=False)       # a file where a folder is needed
    assert r.returncode == 2 and 'occupied' in r.stderr and 'Traceback' not in r.stderr
    assert f.read_text() == 'keep me'


def _calls(tree, name):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            if (isinstance(f, ast.Attribute) and f.attr == name) or (isinstance(f, ast.Name) and f.id == name):
                yield node


def test_checkpoints_load_weights_only_and_no_shell_true():
    files = list((REPO / 'segcore').glob('*.py')) + list((REPO / 'tests').glob('*.py'))
    n_load = 0
    for p in files:
        tree = ast.parse(p.read_text())
        for c in _calls(tree, 'load'):
            if isinstance(c.func, ast.Attribute) and getattr(c.func.value, 'id', None) == 'torch':
                n_load += 1
                kw = {k.arg: k.value for k in c.keywords}
                assert 'weights_only' in kw and getattr(kw['weights_only'], 'value', None) is True, (
                    f'{p.name}:{c.lineno} torch.load without weights_only=True'
                )
        for node in ast.walk(tree):
            if isinstance(node, ast.keyword) and node.arg == 'shell':
                assert getattr(node.value, 'value', None) is False, f'{p.name}:{node.value.lineno} uses shell=True'
    assert n_load >= 1
