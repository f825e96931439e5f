"""JupyterLab opens the compendium with the `segcore` kernel (installed into .venv by the README's commands)."""
import json, os, socket, subprocess, sys, time, urllib.request
from pathlib import Path
import pytest
from conftest import REPO, BIN


def _kernelspecs():
    r = subprocess.run([str(BIN / 'jupyter'), 'kernelspec', 'list', '--json'], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)['kernelspecs']


def test_segcore_kernel_runs_this_python():
    if not (BIN / 'jupyter').exists(): pytest.skip('jupyter is not installed in this environment')
    spec = _kernelspecs().get('segcore')
    assert spec, 'no segcore kernel: run `make test` or `make journey` once (they install it)'
    assert Path(spec['spec']['argv'][0]).resolve() == Path(sys.executable).resolve()


def test_every_notebook_asks_for_the_segcore_kernel():
    for nb in sorted((REPO / 'nbs').rglob('*.ipynb')):
        assert json.loads(nb.read_text())['metadata']['kernelspec']['name'] == 'segcore', nb


def test_jupyter_lab_serves_the_segcore_kernel(tmp_path):
    if not (BIN / 'jupyter-lab').exists(): pytest.skip('jupyterlab is not installed in this environment')
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    env = {**os.environ, 'JUPYTER_RUNTIME_DIR': str(tmp_path / 'runtime'), 'JUPYTER_CONFIG_DIR': str(tmp_path / 'cfg')}
    p = subprocess.Popen([str(BIN / 'jupyter'), 'lab', '--no-browser', f'--port={port}', '--ip=127.0.0.1',
                          '--IdentityProvider.token=segcore-test', f'--ServerApp.root_dir={REPO}', '--allow-root'],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        url = f'http://127.0.0.1:{port}/api/kernelspecs?token=segcore-test'
        for _ in range(240):
            try:
                with urllib.request.urlopen(url, timeout=5) as r: specs = json.loads(r.read())
                break
            except OSError: time.sleep(0.5)
        else: raise AssertionError('jupyter lab did not answer within two minutes')
        assert 'segcore' in specs['kernelspecs']
        with urllib.request.urlopen(f'http://127.0.0.1:{port}/lab?token=segcore-test', timeout=30) as r:
            assert r.status == 200 and b'JupyterLab' in r.read()
    finally:
        p.terminate()
        p.wait(timeout=60)
