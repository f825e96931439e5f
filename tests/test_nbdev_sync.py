"The library is generated from the notebooks: exporting a clean copy reproduces segcore/ exactly."
import shutil, subprocess
from conftest import REPO, BIN


def test_nbdev_export_reproduces_library(tmp_path):
    for name in ('settings.ini', 'setup.py'):
        shutil.copy(REPO / name, tmp_path / name)
    shutil.copytree(REPO / 'nbs', tmp_path / 'nbs', ignore=shutil.ignore_patterns('.ipynb_checkpoints', '_*'))
    (tmp_path / 'segcore').mkdir()
    shutil.copy(REPO / 'segcore' / '__init__.py', tmp_path / 'segcore' / '__init__.py')
    r = subprocess.run([str(BIN / 'nbdev_export')], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    made = sorted(p.name for p in (tmp_path / 'segcore').glob('*.py'))
    have = sorted(p.name for p in (REPO / 'segcore').glob('*.py'))
    assert made == have
    for name in made:
        assert (tmp_path / 'segcore' / name).read_text() == (REPO / 'segcore' / name).read_text(), \
            f'segcore/{name} is out of sync with its notebook: run nbdev_export and commit both'


def test_notebooks_have_no_outputs():
    import json
    for nb in (REPO / 'nbs').rglob('*.ipynb'):
        cells = json.loads(nb.read_text())['cells']
        assert not any(c.get('outputs') for c in cells if c['cell_type'] == 'code'), (
            f'{nb} has outputs (run nbdev_clean)'
        )


def test_library_lines_within_120_columns():
    "Every generated line but nbdev's own `__all__` block stays within 120 columns (as ruff checks the notebooks)."
    for p in (REPO / 'segcore').glob('*.py'):
        if p.name == '_modidx.py': continue
        lines = p.read_text().splitlines()
        long = [i + 1 for i, line in enumerate(lines) if len(line) > 120 and not line.startswith('__all__ = [')]
        assert not long, f'segcore/{p.name}: lines {long} are longer than 120 characters'
