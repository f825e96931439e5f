"""Optuna HPO (segcore.hpo, hpo_space, hpo_storage, hpo_queue) on the phantom with a tiny UNet (CPU, SQLite): exact
trial counts with one worker, two worker processes, two concurrent commands and resumes; failures recorded, pruning,
exported best config, Pareto fronts, search-space errors and password masking."""
import json, os, subprocess, sys, threading
from pathlib import Path
import optuna
import pytest
from optuna.trial import TrialState
from segcore.core import SegcoreError
from segcore.config import load_config, PROFILES
from segcore.hpo import run_hpo, load_space, space_from_dict, open_storage, normalise_storage, study_frame
from segcore.hpo_storage import mask_url, study_lock, engine_kwargs, trial_id_of
from segcore.hpo_queue import create_study, make_pruner, reserve_trials, run_trials, report_validation

TINY = {**PROFILES['tiny'], 'num_threads': 1}      # the tiny test config, one thread per trial
SPACE = {'name': 'tiny', 'base': {'model': 'unet'}, 'params': {
    'lr': {'type': 'float', 'low': 1e-4, 'high': 1e-2, 'log': True},
    'model_kwargs.dropout': {'type': 'float', 'low': 0.0, 'high': 0.2}}}


def _study(out, name):
    return optuna.load_study(study_name=name, storage=open_storage(normalise_storage(None, out)))


def _space_file(tmp_path, d=SPACE, name='space.json'):
    p = tmp_path / name
    p.write_text(json.dumps(d))
    return p


@pytest.fixture(scope='module')
def single(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('hpo1')
    s = run_hpo(_space_file(tmp), 'phantom', tmp / 'out', n_trials=3, study='one', base_overrides=TINY, progress=False)
    return tmp, s


def test_one_worker_runs_exactly_n_and_exports_a_loadable_config(single):
    tmp, s = single
    st = _study(tmp / 'out', 'one')
    assert len(st.trials) == 3 and sorted(t.number for t in st.trials) == [0, 1, 2]
    assert s['n_trials'] == 3 and s['states'] == {'COMPLETE': 3} and s['added'] == 3
    for t in st.trials:                                     # one real run folder per trial, validated on the CV fold
        run = Path(t.user_attrs['run_dir'])
        assert run == tmp / 'out' / 'trials' / str(t.number) and (run / 'summary.json').exists()
        assert 'held-out test split' in json.loads((run / 'summary.json').read_text())['validation']['split']
        assert t.value == pytest.approx(t.user_attrs['val_dice'])
    best = st.best_trial
    assert s['best']['number'] == best.number and s['best']['values']['dice'] == pytest.approx(best.value)
    cfg = load_config(file=s['best_config'])                # what `segcore train --config FILE` reads
    assert (cfg.lr, cfg.model_kwargs, cfg.model, cfg.model_size, cfg.epochs, cfg.data) == \
        (best.params['lr'], {'dropout': best.params['model_kwargs.dropout']}, 'unet', 'tiny', 2, 'phantom')
    summary = json.loads((tmp / 'out' / 'hpo_summary.json').read_text())
    assert summary['storage'] == f"sqlite:///{tmp / 'out' / 'study.db'}" and summary['study'] == 'one'
    assert summary['space_file'].endswith('space.json') and summary['objectives'] == ['dice']
    df = study_frame(st)
    assert list(df.number) == [0, 1, 2] and set(df.state) == {'COMPLETE'} and df['dice'].notna().all()


def test_resume_adds_exactly_the_missing_trials(single):
    tmp, _ = single
    s = run_hpo(_space_file(tmp), 'phantom', tmp / 'out', n_trials=5, study='one', base_overrides=TINY, progress=False)
    st = _study(tmp / 'out', 'one')
    assert s['added'] == 2 and sorted(t.number for t in st.trials) == [0, 1, 2, 3, 4]
    s = run_hpo(_space_file(tmp), 'phantom', tmp / 'out', n_trials=4, study='one', base_overrides=TINY, progress=False)
    assert s['added'] == 0 and len(_study(tmp / 'out', 'one').trials) == 5  # a smaller target never removes or adds
    with pytest.raises(SegcoreError, match='different base_overrides'):
        run_hpo(_space_file(tmp), 'phantom', tmp / 'out', n_trials=6, study='one', base_overrides=dict(TINY, epochs=3),
                progress=False)


def test_two_worker_processes_run_exactly_n_distinct_trials(tmp_path):
    s = run_hpo(_space_file(tmp_path), 'phantom', tmp_path / 'out', n_trials=4, study='two', workers=2,
                base_overrides=TINY, progress=False)
    st = _study(tmp_path / 'out', 'two')
    numbers = [t.number for t in st.trials]
    assert sorted(numbers) == [0, 1, 2, 3] and len(set(trial_id_of(t) for t in st.trials)) == 4
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in st.trials) and s['workers'] == [0, 0]
    assert all('(worker ' in t.user_attrs['worker'] for t in st.trials)
    assert sorted(int(p.name) for p in (tmp_path / 'out' / 'trials').iterdir()) == [0, 1, 2, 3]


def test_two_concurrent_commands_share_one_study_exactly(tmp_path):
    "The same command started twice at once (two 'machines' on one storage): the total is still N, no trial runs twice."
    space = _space_file(tmp_path, dict(SPACE, base=dict(SPACE['base'], **TINY)))
    db = tmp_path / 'shared.db'
    def cmd(out):
        return [sys.executable, '-m', 'segcore.cli', 'hpo', '--space', str(space), '--data', 'phantom', '--trials', '4',
                           '--storage', f'sqlite:///{db}', '--study', 'shared', '--out', str(tmp_path / out)]

    procs = [
        subprocess.Popen(cmd(f'out{i}'), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for i in range(2)
    ]
    logs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], logs
    st = optuna.load_study(study_name='shared', storage=open_storage(f'sqlite:///{db}'))
    assert sorted(t.number for t in st.trials) == [0, 1, 2, 3]
    assert all(t.state == TrialState.COMPLETE for t in st.trials)
    ran = sorted(
        int(p.name)
        for i in range(2)
        if (tmp_path / f'out{i}' / 'trials').exists()
        for p in (tmp_path / f'out{i}' / 'trials').iterdir()
    )
    assert ran == [0, 1, 2, 3], logs  # each trial trained exactly once, by one of the two commands
    assert 'optuna-dashboard sqlite:///' in logs[0] + logs[1]


def test_atomic_claims_under_contention(tmp_path):
    """Eight threads, each with its own connection, reserve and drain one SQLite study: every trial is claimed exactly
    once."""
    url, ran, errors = normalise_storage(None, tmp_path), [], []
    def fake(trial):
        ran.append(trial.number)
        return trial.number / 100
    def worker():
        try:
            with study_lock(url, 'race'):
                st = create_study('race', open_storage(url), ('dice',), pruner='none')
                reserve_trials(st, 40)
            run_trials(st, fake, progress=False)
        except Exception as e: errors.append(e)
    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads: t.start()
    for t in threads: t.join()
    assert not errors, errors
    st = optuna.load_study(study_name='race', storage=open_storage(url))
    assert (
        len(st.trials) == 40
        and sorted(ran) == list(range(40))
        and all(t.state == TrialState.COMPLETE for t in st.trials)
    )


def test_failing_trials_are_recorded_and_the_study_goes_on(tmp_path):
    # a valid config whose run fails: a device that does not exist
    space = {'name': 'failing', 'params': {'device': {'type': 'categorical', 'choices': ['cpu', 'cuda:99']}}}
    s = run_hpo(_space_file(tmp_path, space), 'phantom', tmp_path / 'out', n_trials=4, base_overrides=TINY,
                progress=False, seed=1)
    st = _study(tmp_path / 'out', 'failing-phantom')
    assert len(st.trials) == 4 and set(s['states']) == {'COMPLETE', 'FAIL'}
    for t in st.trials:
        if t.params['device'] == 'cuda:99':
            assert t.state == TrialState.FAIL and 'cuda' in t.user_attrs['error']
        else: assert t.state == TrialState.COMPLETE
    assert load_config(file=s['best_config']).device == 'cpu'


def test_failing_data_is_a_failed_trial_not_a_crash(tmp_path):
    s = run_hpo(space_from_dict(SPACE), None, tmp_path / 'out', n_trials=1, study='nodata',
                base_overrides=dict(TINY, data=str(tmp_path / 'missing')), progress=False)
    t = _study(tmp_path / 'out', 'nodata').trials[0]
    assert s['states'] == {'FAIL': 1} and 'DataError' in t.user_attrs['error'] and 'missing' in t.user_attrs['error']
    assert s['best'] is None and s['best_config'] is None


def test_a_clearly_bad_trial_is_pruned(tmp_path):
    "Deterministic: a fake objective reports Dice curves through report_validation, as the real objective does."
    url = normalise_storage(None, tmp_path)
    def fake(trial):
        dice = 0.02 if trial.number == 4 else 0.7 + 0.02 * trial.number
        for epoch in (1, 2, 3, 4): report_validation(trial, epoch, dice * epoch / 4)
        return dice
    with study_lock(url, 'prune'):
        st = create_study('prune', url, ('dice',), pruner=make_pruner('median', first_step=1))
        reserve_trials(st, 6)
    run_trials(st, fake, progress=False)
    states = [t.state for t in st.trials]
    assert states == [TrialState.COMPLETE] * 4 + [TrialState.PRUNED, TrialState.COMPLETE]
    assert st.trials[4].last_step == 2                      # never at the first validation (epoch 1), at the second one
    # multi-objective studies are never pruned (Optuna cannot), but still run
    with study_lock(url, 'mo'):
        mo = create_study('mo', url, ('dice', 'time'), pruner=make_pruner('median', first_step=1))
        reserve_trials(mo, 6)
    run_trials(mo, lambda t: (fake(t), 1.0), progress=False)
    assert all(t.state == TrialState.COMPLETE for t in mo.trials)


def test_multi_objective_returns_a_pareto_front(tmp_path):
    s = run_hpo(
        space_from_dict(SPACE),
        'phantom',
        tmp_path / 'out',
        n_trials=3,
        study='mo',
        objectives=('dice', 'time'),
        base_overrides=TINY,
        progress=False,
    )
    st = _study(tmp_path / 'out', 'mo')
    assert [d.name for d in st.directions] == ['MAXIMIZE', 'MINIMIZE'] and st.metric_names == ['dice', 'time']
    front = s['pareto_front']
    assert front and {t['number'] for t in front} == {t.number for t in st.best_trials}
    assert all(set(t['values']) == {'dice', 'time'} for t in front)
    assert s['best']['values']['dice'] == max(t['values']['dice'] for t in front)
    assert load_config(file=s['best_config']).lr == pytest.approx(s['best']['params']['lr'])
    for t in st.trials:
        assert t.user_attrs['memory_mb'] > 0 and t.user_attrs['memory_source'].startswith(('cpu_peak_rss', 'cuda'))
        assert t.values[1] == pytest.approx(t.user_attrs['train_seconds'])
    df = study_frame(st)
    assert {'dice', 'time', 'values', 'params_lr'} <= set(df.columns)


@pytest.mark.parametrize('params, message',
                         [({'lr': {'type': 'loguniform', 'low': 1e-4, 'high': 1e-2}},
                           "parameter 'lr': unknown type 'loguniform'"),
                          ({'lr': {'type': 'float', 'low': 1e-2, 'high': 1e-2}},
                           "parameter 'lr': low (0.01) must be smaller than high"),
                          ({'weight_decay': {'type': 'float', 'low': 0, 'high': 1e-2, 'log': True}},
                           "parameter 'weight_decay': a log scale needs low > 0"),
                          ({'batch_size': {'type': 'categorical', 'choices': []}},
                           "parameter 'batch_size': needs a non-empty list of choices"),
                          ({'loss.boundary': {'type': 'float', 'low': 0.0, 'high': 0.1,
                                              'condition': {'loss_kind': ['dice_ce_boundary']}}},
                           "parameter 'loss.boundary': condition on unknown parameter 'loss_kind'"),
                          ({'learning_rate': {'type': 'float', 'low': 1e-4, 'high': 1e-2}},
                           "parameter 'learning_rate' (value 0.0001): unknown config key 'learning_rate'"),
                          ({'lr.x': {'type': 'float', 'low': 1e-4, 'high': 1e-2}},
                           "parameter 'lr.x' (value 0.0001): 'lr' is not a mapping"),
                          ({'split_seed': {'type': 'int', 'low': 0, 'high': 5}},
                           "parameter 'split_seed': 'split_seed' defines the data split")])
def test_bad_space_files_name_the_file_and_the_parameter(tmp_path, params, message):
    p = _space_file(tmp_path, {'name': 'bad', 'params': params}, 'my-space.json')
    with pytest.raises(SegcoreError) as e: load_space(p)
    assert str(e.value).startswith(f'{p}: ') and message in str(e.value)


def test_shipped_spaces_load_and_suggest_valid_configs():
    from segcore.hpo import trial_overrides
    root = Path(__file__).resolve().parents[1] / 'configs' / 'hpo'
    names = sorted(p.stem for p in root.glob('*.json'))
    assert names == ['augment', 'loss', 'segresnet', 'swinunetr', 'unet', 'unetr']
    for n in names:
        sp = load_space(root / f'{n}.json')
        for seed in range(5):                               # random draws give configs that load_config accepts
            st = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
            t = st.ask()
            load_config(overrides=trial_overrides(sp, sp.sample(t), 'phantom'))
    loss = load_space(root / 'loss.json')
    def fixed(**v):
        return loss.sample(optuna.trial.FixedTrial(v))
    assert 'loss.boundary' not in fixed(loss_kind='dice_focal', lr=1e-3)
    assert (
        fixed(loss_kind='dice_ce_boundary', **{'loss.ce': 1.0, 'loss.boundary': 0.02}, lr=1e-3)['loss.boundary'] == 0.02
    )


def test_mask_url_hides_passwords():
    assert mask_url('postgresql://bob:hunter2@db.lan:5432/hpo') == 'postgresql://bob:***@db.lan:5432/hpo'
    assert mask_url('postgresql+psycopg2://bob:p%40ss@db/hpo?password=x&sslmode=require') == \
        'postgresql+psycopg2://bob:***@db/hpo?password=***&sslmode=require'
    assert mask_url('postgresql://bob@db/hpo') == 'postgresql://bob@db/hpo'


def test_password_never_printed_nor_written(tmp_path):
    secret, env_secret = 'url-Secret-93xq', 'env-Secret-71kz'
    env = dict(os.environ, SEGCORE_HPO_PASSWORD=env_secret, PGPASSWORD=env_secret)
    # the env password goes to the driver as a connection argument, never into the URL
    os.environ['SEGCORE_HPO_PASSWORD'] = env_secret
    try: assert engine_kwargs('postgresql+psycopg2://bob@db/hpo')['connect_args'] == {'password': env_secret}
    finally: os.environ.pop('SEGCORE_HPO_PASSWORD')
    # an unreachable PostgreSQL (a socket folder that does not exist): a clear error, masked URL, no password
    space = _space_file(tmp_path)
    r = subprocess.run([sys.executable, '-m', 'segcore.cli', 'hpo', '--space', str(space), '--data', 'phantom',
                        '--trials', '1', '--storage', f'postgresql://bob:{secret}@/hpo?host={tmp_path}/nosocket',
                        '--out', str(tmp_path / 'pg')], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2 and 'cannot open the HPO storage postgresql+psycopg2://bob:***@/hpo' in r.stderr, r.stderr
    assert secret not in r.stdout + r.stderr and env_secret not in r.stdout + r.stderr
    # a full SQLite run with passwords in the environment: nothing printed or written contains them
    space2 = _space_file(tmp_path, dict(SPACE, base=dict(SPACE['base'], **TINY)), 'tiny.json')
    r = subprocess.run([sys.executable, '-m', 'segcore.cli', 'hpo', '--space', str(space2), '--data', 'phantom',
                        '--trials', '1', '--out', str(tmp_path / 'sq')], capture_output=True, text=True, env=env,
                       timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert 'optuna-dashboard sqlite:///' in r.stdout and 'best trial 0' in r.stdout
    assert secret not in r.stdout + r.stderr and env_secret not in r.stdout + r.stderr
    for f in [p for p in tmp_path.rglob('*') if p.is_file()]:
        data = f.read_bytes()
        assert secret.encode() not in data and env_secret.encode() not in data, f


def test_an_interrupted_trial_goes_back_to_the_queue_and_resumes(tmp_path):
    """SIGTERM/Ctrl-C during training (segcore.train.Interrupted): the trial is WAITING again, with its parameters, not
    lost nor duplicated."""
    from segcore.train import Interrupted
    url, calls = normalise_storage(None, tmp_path), []
    def fake(trial):
        x = trial.suggest_float('x', 0, 1)
        calls.append((trial.number, x))
        if len(calls) == 2: raise Interrupted('stopped by SIGTERM; checkpoint saved')
        return x
    with study_lock(url, 'intr'):
        st = create_study('intr', url, ('dice',), pruner='none')
        reserve_trials(st, 3)
    with pytest.raises(Interrupted): run_trials(st, fake, progress=False)
    assert [t.state for t in st.trials] == [TrialState.COMPLETE, TrialState.WAITING, TrialState.WAITING]
    assert run_trials(st, fake, progress=False) == [1, 2]
    assert len(st.trials) == 3 and all(t.state == TrialState.COMPLETE for t in st.trials)
    assert calls[1] == calls[2] and st.trials[1].user_attrs['interrupted'] == 1    # same trial, same parameters
