"""`segcore journey`: all eight papermill stages on the phantom (smoke budgets), the report set they leave,
a failing stage that keeps the finished ones, and the pages opened in a real browser (headless Chromium)."""
import json, os, re, shutil
import pytest
from conftest import segcore, read_json, record_count, REPO

STAGE_PAGES = ['01_data_audit', '02_baseline', '03_loss_ablation', '04_augmentation_ablation', '05_architectures',
               '06_hpo', '07_tta_postprocessing', '08_benchmarks']


@pytest.fixture(scope='module')
def journey(tmp_path_factory):
    out = tmp_path_factory.mktemp('journey') / 'run'
    segcore('journey', '--data', 'phantom', '--profile', 'smoke', '--out', out, '--quiet', '--param', '06.trials=3')
    return out


def test_every_stage_runs_and_is_rendered(journey):
    run = read_json(journey / 'run.json')
    assert run['format'] == 'segcore-journey/1' and run['profile'] == 'smoke'
    assert [s['stage'] for s in run['stages']] == [f'{k:02d}' for k in range(1, 9)]
    assert all(s['status'] == 'done' for s in run['stages']), [(s['stage'], s['status'], s.get('error'))
                                                                for s in run['stages']]
    assert len(run['data']['sha256']) == 64 and run['data']['synthetic'] is True
    assert run['environment']['versions']['torch'] and run['device'] == 'cpu' and run['started'] and run['finished']
    assert run['config']['baseline']['model'] == 'unet' and 'short' in run['config']
    assert run['budgets']['short'] == 'smoke-short' and run['config']['short']['epochs'] == 1     # the study profile
    hpo = next(s for s in run['stages'] if s['stage'] == '06')
    assert hpo['parameters'] == {'trials': 3} and hpo['summary'].startswith('3 trials')  # a stage parameter (CLI)
    idx = (journey / 'index.html').read_text()
    assert 'SYNTHETIC DATA' in idx
    assert (journey / 'plotly.min.js').read_text()[:40].count('plotly.js v') == 1    # one copy beside the pages
    assert '<h2>Findings</h2>' in idx and 'held-out mean foreground Dice <b>' in idx       # the findings box
    assert idx.count('could not have been detected') + idx.count('than the baseline:') >= 1   # arms' findings
    for page in STAGE_PAGES:
        html = (journey / f'{page}.html').read_text()
        assert f'href="{page}.html"' in idx and f'href="notebooks/{page}.ipynb"' in idx
        assert 'href="notebooks/' in html and 'href="index.html"' in html          # the executed notebook is linked
        assert 'SYNTHETIC DATA' in html, page
        assert f'<title>{page[:2]} · ' in html, f'{page}: no page title'
        assert '<b>Result</b>' in html and '<b>Caveat:</b>' in html, f'{page}: no headline card'
        assert page == STAGE_PAGES[-1] or f'href="{STAGE_PAGES[STAGE_PAGES.index(page) + 1]}.html"' in html  # next
        assert 'plotly.js v' not in html and len(html) < 1_500_000, f'{page}: plotly.js inlined ({len(html)} bytes)'
        css = re.findall(r'<link rel="stylesheet" href="(nbconvert-[0-9a-f]{12}\.css)">', html)
        assert css and all((journey / c).is_file() for c in css), f'{page}: nbconvert CSS inlined or missing'
        assert 'study = Study(' not in html, f'{page}: code is shown to supervisors'
        assert '<script src="http' not in html and "<script src='http" not in html, f'{page}: external script'
        nb_text = (journey / 'notebooks' / f'{page}.ipynb').read_text()
        assert 'plotly.js v' not in nb_text and len(nb_text) < 1_500_000, f'{page}: notebook inlines plotly.js'
        nb = json.loads(nb_text)
        tags = [c['metadata'].get('tags', []) for c in nb['cells']]
        assert ['parameters'] in tags and ['injected-parameters'] in tags
        assert not any(o.get('output_type') == 'error' for c in nb['cells'] for o in c.get('outputs', []))


def test_report_content_a_supervisor_expects(journey):
    def page(p):
        return (journey / f'{p}.html').read_text()
    p2 = page('02_baseline')
    assert 'Seed spread' in p2 and 'bit-identical' in p2                      # the reproducibility section
    sb = read_json(journey / 'short_budget.json')                             # the budget fixed from the curve
    assert f"train {sb['train_steps']} steps" in p2 and len(sb['curve']['steps']) == 3
    assert 'Findings over cases and seeds' in page('03_loss_ablation')
    assert 'smallest detectable' in page('04_augmentation_ablation')
    assert 'held-out test Dice' in p2 and '95% CI' in p2 and 'plotly-graph-div' in p2
    for p in ('03_loss_ablation', '04_augmentation_ablation', '05_architectures'):
        h = page(p)
        if p == '05_architectures':            # each architecture's size, steps and convergence, from its curve
            assert 'Size, budget and convergence of each architecture' in h and 'time to 97 %' in h
            s5 = read_json(journey / 'stages' / '05.json')['metrics']
            if len(s5['arms']) == 1:           # none converged at the smoke budget: listed, not compared
                assert 'Nothing to compare' in h and s5['not_converged']
                continue
        assert 'wilcoxon_p_holm' in h and 'paired per case' in h and 'Visual comparison' in h
        assert h.count('data:image/png') >= 4                                   # box plot + 3 five-panels
    p6 = page('06_hpo')
    for k in ('optimisation history', 'parallel coordinates', 'Pareto front', 'held-out test split',
              'Does the short budget rank the trials as a longer one would?', 'retrained from their own configs'):
        assert k in p6, k
    s6 = read_json(journey / 'stages' / '06.json')['metrics']
    assert s6['rank_n'] == 2 and isinstance(s6['rank_same_best'], bool)    # the smoke profile retrains two trials
    p7 = page('07_tta_postprocessing')
    assert 'No test-time augmentation' in p7 and 'entropy' in p7 and 'hd95' in p7   # trained without flips: no TTA
    s7 = read_json(journey / 'stages' / '07.json')['metrics']
    assert s7['tta'] == 'none' and s7['tta_diff'] is None
    assert 'label agreement' in page('08_benchmarks')
    s2 = read_json(journey / 'stages' / '02.json')['metrics']
    assert s2['repeat_identical'] is True and 0 <= s2['test_dice'] <= 1
    hpo = read_json(journey / 'runs' / 'hpo' / 'hpo_summary.json')
    assert hpo['n_trials'] == 3 and (journey / 'runs' / 'hpo' / 'best_config.yaml').exists()


def test_failing_stage_keeps_finished_ones(journey, tmp_path):
    out = tmp_path / 'copy'
    shutil.copytree(journey, out)
    before = {p: (out / f'{p}.html').read_bytes() for p in ('01_data_audit', '02_baseline')}
    env = {**os.environ, 'SEGCORE_FAULT': 'journey@03'}
    r = segcore('journey', '--data', 'phantom', '--profile', 'smoke', '--out', out, '--stages', '03,04', '--quiet',
                env=env, check=False)
    assert r.returncode == 1, r.stderr
    run = read_json(out / 'run.json')
    st = {s['stage']: s for s in run['stages']}
    assert st['01']['status'] == st['02']['status'] == 'done' and st['05']['status'] == 'done'   # earlier records kept
    assert st['03']['status'] == 'failed' and st['04']['status'] == 'not run'
    err = st['03']['error']
    nb = json.loads((out / 'notebooks' / '03_loss_ablation.ipynb').read_text())
    assert err['ename'] == 'RuntimeError' and 'injected failure' in err['evalue']
    src = ''.join(nb['cells'][err['cell']]['source']).splitlines()
    call = 'res = show_ablation(study, ablation)'                       # the notebook line that raised
    assert src[err['line'] - 1] == err['source_line'] == call
    idx = (out / 'index.html').read_text()
    assert f"failed at cell {err['cell']}, line {err['line']} ({call})" in idx and 'Stage 03 failed' in idx
    assert 'failed</b> at cell' in (out / '03_loss_ablation.html').read_text()        # the partial notebook is rendered
    for p, b in before.items(): assert (out / f'{p}.html').read_bytes() == b
    r = segcore('journey', '--data', 'phantom', '--profile', 'smoke', '--out', out, '--stages', '03', '--quiet')
    assert {s['stage']: s['status'] for s in read_json(out / 'run.json')['stages']}['03'] == 'done'


def test_other_data_in_the_same_folder_is_refused(journey, tmp_path):
    out = tmp_path / 'copy2'
    shutil.copytree(journey, out, ignore=shutil.ignore_patterns('runs'))
    other = tmp_path / 'other'
    segcore('phantom', other, '--n', '6')
    r = segcore('journey', '--data', other, '--profile', 'smoke', '--out', out, '--stages', '01', '--quiet',
                check=False)
    assert r.returncode == 2 and 'use another --out' in r.stderr


def _browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip('playwright is not installed (pip install -e ".[dev]")')
    exe = shutil.which('chromium') or shutil.which('chromium-browser')
    if not exe: pytest.skip('Chromium is not installed (Debian package chromium; .ci/run installs it)')
    return sync_playwright, exe


def test_pages_in_headless_chromium(journey, tmp_path):
    sync_playwright, exe = _browser()
    import numpy as np
    from PIL import Image
    problems, checked = [], 0
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=['--no-sandbox'])
        page = b.new_page(viewport={'width': 1280, 'height': 900})
        page.on('console', lambda m: problems.append(f'console {m.type}: {m.text}') if m.type == 'error' else None)
        page.on('pageerror', lambda e: problems.append(f'page error: {e}'))
        local = ('file:', 'data:', 'blob:')
        page.on('request', lambda r: None if r.url.startswith(local) else problems.append(f'network request: {r.url}'))
        for name in ['index'] + STAGE_PAGES:
            page.goto((journey / f'{name}.html').as_uri())
            page.wait_for_load_state('load')
            if name in ('01_data_audit', '02_baseline', '06_hpo', '07_tta_postprocessing', '08_benchmarks'):
                page.wait_for_selector('.plotly-graph-div .main-svg', timeout=20000)    # plotly drew its figures
            if name == 'index':
                assert page.locator('a', has_text='Loss ablation').count() == 1
                shot = tmp_path / 'index.png'
                page.screenshot(path=str(shot), full_page=True)
                img = np.asarray(Image.open(shot).convert('L'), float)
                assert img.shape[0] > 300 and img.std() > 10, 'blank screenshot'
            checked += 1
        b.close()
    record_count('journey pages opened in Chromium without errors', 1 + len(STAGE_PAGES),
                 checked if not problems else 0)
    assert not problems, problems


def test_unknown_stage_parameter_is_a_clear_error(tmp_path):
    r = segcore('journey', '--data', 'phantom', '--profile', 'smoke', '--out', tmp_path / 'j', '--stages', '06',
                '--param', '06.trails=3', check=False)
    assert r.returncode == 2 and "stage 06 has no parameter 'trails'" in r.stderr and 'trials' in r.stderr
    assert 'Traceback' not in r.stderr
    assert not (tmp_path / 'j').exists()  # refused before anything is written


@pytest.mark.parametrize('profile', ['quick', 'full', 'smoke'])
def test_every_profile_arm_config_is_valid_and_its_model_runs(profile, tmp_path):
    """Each profile's baseline and every arm of the ablation files (`configs/ablations/*.yaml`, stages 03-05) give a
    valid config whose model, built as the trainer builds it, runs one forward pass at its patch size: the full (GPU)
    profile is checked here, before any GPU time is spent on it. The `*_2d.yaml` files (what a stage trains on 2D
    data) are checked on a planned 2D phantom, with the patch an arm's network is given (`fit_patch`)."""
    import torch
    from segcore.study import Study, load_ablation, audit_stage, fit_patch
    from segcore.models import build_from_spec, model_spec, main_output
    segcore('phantom', tmp_path / 'p2', '--dim', '2', '--n', '16')
    study3, study2 = Study(tmp_path / 's3', 'phantom', profile), Study(tmp_path / 's2', tmp_path / 'p2', profile)
    audit_stage(study2)
    assert study2.dims == 2 and study3.dims == 3
    files = sorted((REPO / 'configs' / 'ablations').glob('*.yaml'))
    assert {f.stem for f in files} >= {'loss', 'augmentation', 'architectures', 'architectures_2d'}
    arms = {'baseline': (study3, 'baseline', {}), 'baseline 2D': (study2, 'baseline', {})}
    for f in files:
        st = study2 if f.stem.endswith('_2d') else study3
        arms.update({f'{f.stem} {k}': (st, 'short', v) for k, v in load_ablation(f)['arms'].items()})
    assert len(arms) >= 17
    built = set()
    for name, (st, kind, arm) in arms.items():
        cfg = st.config(kind, **fit_patch(st, arm))
        key = (cfg.model, cfg.model_size, tuple(cfg.patch_size), str(cfg.model_kwargs), cfg.deep_supervision)
        if key in built: continue
        built.add(key)
        torch.manual_seed(0)
        m = build_from_spec(model_spec(cfg, 1, 3)).eval()
        with torch.no_grad(): y = main_output(m(torch.zeros(1, 1, *cfg.patch_size)), len(cfg.patch_size))
        assert tuple(y.shape) == (1, 3, *cfg.patch_size), name
    assert {k[0] for k in built if len(k[2]) == 2} >= {'efficientnet_fpn', 'attention_res_unet_se', 'unet'}
