import json, os, subprocess, sys, tempfile
from pathlib import Path
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get('SEGCORE_SHARED_DATA', REPO.parent / 'shared' / 'data'))
BIN = Path(sys.executable).parent


def record_count(what, total, passed):
    """Remember a catalogue's size and pass count; printed in the test summary (CI log). Appended to a file that the
    controlling process reads, so that the counts of pytest-xdist workers are printed too."""
    with open(Path(os.environ['SEGCORE_TEST_COUNTS']) / 'counts.jsonl', 'a') as f:
        f.write(json.dumps([what, total, passed]) + '\n')


def pytest_terminal_summary(terminalreporter):
    f = Path(os.environ.get('SEGCORE_TEST_COUNTS', '/nonexistent')) / 'counts.jsonl'
    for what, total, passed in (json.loads(line) for line in (f.read_text().splitlines() if f.exists() else [])):
        terminalreporter.write_line(f'{what}: {total} cases, {passed} passed')


def pytest_configure(config):
    config.addinivalue_line('markers', 'slow: long real-data runs; run with SEGCORE_SLOW=1')
    if 'PYTEST_XDIST_WORKER' in os.environ:
        # `make test` runs two workers on CI's two cores: one compute thread each (inherited by the processes a test
        # starts), instead of two threads each fighting over the same cores.
        for k in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS'): os.environ[k] = '1'
        if 'torch' in sys.modules: sys.modules['torch'].set_num_threads(1)
    else:                                   # the controlling process: a fresh folder for the catalogue counts
        os.environ['SEGCORE_TEST_COUNTS'] = tempfile.mkdtemp(prefix='segcore-test-counts-')


# The longest files first (each runs whole journeys or trainings), so that `make test`'s two workers end together.
FIRST = ('test_journey_fields.py', 'test_journey_2d.py', 'test_journey.py', 'test_train.py', 'test_hpo.py',
         'test_hpo_postgres.py', 'test_2d.py', 'test_brats.py', 'test_predict.py')


def pytest_collection_modifyitems(config, items):
    """The longest files first (`FIRST`; the sort is stable, so a file's tests keep their order). Tests marked `slow`
    run only with SEGCORE_SLOW=1 (they do not fit CI's time)."""
    rank = {name: i for i, name in enumerate(FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(FIRST)))
    if os.environ.get('SEGCORE_SLOW') == '1': return
    for item in items:
        if 'slow' in item.keywords: item.add_marker(pytest.mark.skip(reason='slow: set SEGCORE_SLOW=1 to run it'))


@pytest.fixture(scope='session')
def shared_data():
    "The real data beside the checkout (../shared/data); tests that need it skip cleanly without it."
    if not (SHARED / 'hippocampus').is_dir():
        pytest.skip(f'real data not found at {SHARED}')
    return SHARED


@pytest.fixture(autouse=True, scope='session')
def _offline(tmp_path_factory):
    "Tests (and the processes they start) never touch the network nor the user's cache; set before any fixture."
    old = {k: os.environ.get(k) for k in ('SEGCORE_OFFLINE', 'SEGCORE_CACHE')}
    os.environ['SEGCORE_OFFLINE'] = '1'
    os.environ['SEGCORE_CACHE'] = str(tmp_path_factory.getbasetemp() / 'cache')
    yield
    for k, v in old.items():
        if v is None: os.environ.pop(k, None)
        else: os.environ[k] = v


TINY_TRAIN = ['--profile', 'tiny']          # the one tiny test config: segcore.config.PROFILES['tiny']


@pytest.fixture(scope='session')
def tiny_run(tmp_path_factory):
    """A tiny model trained on the phantom (`TINY_TRAIN`), shared by the tests that only read a run (copy it to change
    it)."""
    out = tmp_path_factory.mktemp('tiny') / 'run'
    segcore('train', '--data', 'phantom', '--out', out, '--quiet', *TINY_TRAIN)
    return out


def segcore(*args, check=True, timeout=600, **kw):
    "Run the installed `segcore` console script (argument list, never a shell); `timeout` only guards against a hang."
    exe = BIN / 'segcore'
    assert exe.exists(), f'console script missing: {exe}'
    r = subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f'segcore {" ".join(map(str, args))} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}')
    return r


def read_json(p):
    return json.loads(Path(p).read_text())
