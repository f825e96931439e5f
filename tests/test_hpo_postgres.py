"""HPO against a real PostgreSQL server (Debian packages, started here on loopback): K worker
processes, N trials requested -> exactly N trials recorded, none duplicated, none lost; the password
never appears in output or files."""
import glob, os, shutil, socket, subprocess, tempfile
from pathlib import Path
import pytest
from segcore.config import PROFILES

PASSWORD = 'pg-secret-Xq81'


def _pg_bin():
    cands = sorted(glob.glob('/usr/lib/postgresql/*/bin/initdb'))
    return Path(cands[-1]).parent if cands else None


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _as_owner(cmd, user):
    "Run a PostgreSQL server command as `user` (initdb and postgres refuse to run as root); argument lists only."
    return (['runuser', '-u', user, '--'] + cmd) if user else cmd


@pytest.fixture(scope='module')
def postgres():
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip('PostgreSQL server binaries not installed (.ci/run installs the Debian package postgresql)')
    user = 'postgres' if os.geteuid() == 0 else None
    base = Path(tempfile.mkdtemp(prefix='segcore-pg-', dir='/tmp'))
    base.chmod(0o755)
    data, sock = base / 'data', base / 'sock'
    sock.mkdir()
    pw = base / 'pw'
    pw.write_text(PASSWORD + '\n')
    if user:
        import pwd
        uid, gid = pwd.getpwnam(user).pw_uid, pwd.getpwnam(user).pw_gid
        for p in (base, sock, pw): os.chown(p, uid, gid)
    subprocess.run(_as_owner([str(bindir / 'initdb'), '-D', str(data), '-U', 'segcore', '--auth=scram-sha-256',
                              f'--pwfile={pw}', '-E', 'UTF8'], user), check=True, capture_output=True, timeout=120)
    port = _free_port()
    subprocess.run(_as_owner([str(bindir / 'pg_ctl'), '-D', str(data), '-l', str(base / 'log'), '-w', '-t', '60',
                              '-o', f'-p {port} -h 127.0.0.1 -k {sock} -c max_connections=50', 'start'], user),
                   check=True, capture_output=True, timeout=120)
    env = {**os.environ, 'PGPASSWORD': PASSWORD}
    subprocess.run([str(bindir / 'createdb'), '-h', '127.0.0.1', '-p', str(port), '-U', 'segcore', 'hpo'], env=env,
                   check=True, capture_output=True, timeout=60)
    try:
        yield f'postgresql://segcore@127.0.0.1:{port}/hpo'
    finally:
        subprocess.run(_as_owner([str(bindir / 'pg_ctl'), '-D', str(data), '-m', 'fast', 'stop'], user),
                       capture_output=True, timeout=60)
        shutil.rmtree(base, ignore_errors=True)


SPACE = {'name': 'pg-test', 'base': {**PROFILES['tiny'], 'epochs': 1, 'iterations_per_epoch': 2, 'num_threads': 1},
         'params': {'lr': {'type': 'float', 'low': 1e-4, 'high': 1e-2, 'log': True}}}


def test_workers_share_a_postgres_study_exactly(postgres, tmp_path, monkeypatch, capfd):
    import json, optuna
    from segcore.hpo import run_hpo
    monkeypatch.setenv('PGPASSWORD', PASSWORD)
    space = tmp_path / 'space.json'
    space.write_text(json.dumps(SPACE))
    out = tmp_path / 'hpo'
    n, k = 6, 3
    run_hpo(space, 'phantom', out, n_trials=n, storage=postgres, study='pg-exact', workers=k, progress=False)
    storage = optuna.storages.RDBStorage(postgres.replace('postgresql://segcore@', f'postgresql+psycopg2://segcore:{PASSWORD}@'))
    trials = optuna.load_study(study_name='pg-exact', storage=storage).get_trials(deepcopy=False)
    numbers = [t.number for t in trials]
    from conftest import record_count

    record_count(f'postgres HPO ({k} workers): trials requested vs recorded distinct', n,
                 len(set(numbers)) if len(trials) == n else 0)
    assert len(trials) == n and sorted(numbers) == list(range(n))                      # none lost, none duplicated
    assert all(t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED) for t in trials)
    workers = {t.user_attrs.get('worker') for t in trials}
    assert len(workers) >= 2, workers                                                  # the work was shared
    # a second command against the same study (another "machine") tops it up to the new target, exactly
    run_hpo(
        space,
        'phantom',
        tmp_path / 'hpo2',
        n_trials=n + 2,
        storage=postgres,
        study='pg-exact',
        workers=2,
        progress=False,
    )
    assert len(optuna.load_study(study_name='pg-exact', storage=storage).get_trials(deepcopy=False)) == n + 2
    # the password appears nowhere: not in output, not in any file written
    captured = capfd.readouterr()
    assert PASSWORD not in captured.out + captured.err
    for f in list(out.rglob('*')) + list((tmp_path / 'hpo2').rglob('*')):
        if f.is_file() and f.suffix in ('.json', '.yaml', '.csv', '.txt', '.log', '.html'):
            assert PASSWORD not in f.read_text(errors='ignore'), f


def test_server_requires_and_accepts_the_password(postgres):
    import psycopg2

    host, rest = postgres.split('@')[1].split(':')
    port, db = rest.split('/')
    with pytest.raises(psycopg2.OperationalError):
        psycopg2.connect(host=host, port=int(port), dbname=db, user='segcore', password='wrong', connect_timeout=10)
    conn = psycopg2.connect(host=host, port=int(port), dbname=db, user='segcore', password=PASSWORD, connect_timeout=10)
    with conn.cursor() as c:
        c.execute('select 1')
        assert c.fetchone() == (1,)
    conn.close()
