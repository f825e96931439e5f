"""`segcore journey` on 2D data, end to end at smoke budgets: a per-patient slice dataset (many slices per patient,
split by patient) and a large-image tiling dataset (mosaics of slices), both derived from the real hippocampus
volumes, or from the 3D phantom when the real data is absent (a fresh clone runs offline)."""
import json
import pytest
from conftest import SHARED, segcore, read_json

STAGES = [f'{k:02d}' for k in range(1, 9)]
RUN = [k for k in STAGES if k != '06']
PAGES = ['01_data_audit', '02_baseline', '03_loss_ablation', '04_augmentation_ablation', '05_architectures',
         '06_hpo', '07_tta_postprocessing', '08_benchmarks']


@pytest.fixture(scope='module')
def source(tmp_path_factory):
    "The 3D data the 2D datasets are derived from: the real hippocampus volumes, else a small 3D phantom."
    real = SHARED / 'hippocampus'
    if real.is_dir(): return real, False
    ph = tmp_path_factory.mktemp('src') / 'phantom3d'
    segcore('phantom', ph, '--n', '16')             # 8 patients (two visits each)
    return ph, True


def _journey(data, out):
    "Every stage but 06 (HPO has nothing 2D-specific; test_journey.py runs it)."
    segcore('journey', '--data', data, '--profile', 'smoke', '--out', out, '--quiet', '--stages', ','.join(RUN),
            '--param', '07.tta=d4', timeout=900)       # TTA asked for: the smoke model is trained without flips
    return out


def _thin(data, every: int):
    "Keep every `every`-th slice of each patient (fewer cases, the same patients), and say so in DERIVED.txt."
    for d in sorted(p for p in data.iterdir() if p.is_dir()):
        images = sorted((f for f in d.iterdir() if not f.stem.endswith('_mask')),
                        key=lambda f: int(f.stem.rsplit('_')[-1]))
        for f in [f for i, f in enumerate(images) if i % every]:
            f.unlink()
            f.with_name(f'{f.stem}_mask{f.suffix}').unlink()
    with open(data / 'DERIVED.txt', 'a') as fh: fh.write(f'test subset: one slice in {every} of each patient kept\n')
    return data


@pytest.fixture(scope='module')
def slices(source, tmp_path_factory):
    "A per-patient slice dataset (every 3rd slice with foreground of 8 patients) and its smoke journey."
    from segcore.derive import slices_dataset
    root = tmp_path_factory.mktemp('slices')
    data = _thin(slices_dataset(source[0], root / 'data', max_patients=8, only_foreground=True, progress=False), 3)
    n = sum(1 for f in data.rglob('*_mask.tif'))
    assert 20 <= n <= 120 and n == sum(1 for f in data.rglob('*.tif')) - n, n        # pairs kept together
    return data, _journey(data, root / 'journey')


@pytest.fixture(scope='module')
def mosaics(source, tmp_path_factory):
    "A tiling dataset: 8 mosaics of 3×3 central slices (one case, so one patient, per image), and its smoke journey."
    from segcore.derive import mosaic_dataset
    if source[1]:
        pytest.skip('real hippocampus data absent: phantom mosaics include images without foreground, on which '
                    'segcore.train crashes when a model predicts nothing (empty-vs-empty Dice stored as null)')
    root = tmp_path_factory.mktemp('mosaics')
    data = mosaic_dataset(source[0], root / 'data', grid=(3, 3), n_images=8, progress=False)
    return data, _journey(data, root / 'journey')


def _check_common(data, out, synthetic: bool):
    "What every 2D journey leaves: all stages done, their records, the plan shown, 2D arms, d4 TTA, provenance."
    run = read_json(out / 'run.json')
    st = {s['stage']: s for s in run['stages']}
    assert list(st) == STAGES and all(s['status'] == ('done' if k in RUN else 'not run') for k, s in st.items()), \
        [(k, s['status'], s.get('error')) for k, s in st.items()]
    rec = {k: read_json(out / 'stages' / f'{k}.json')['metrics'] for k in RUN}
    plan = read_json(out / 'plan.json')
    assert plan['choices']['dimensions']['value'] == 2 and len(plan['config']['patch_size']) == 2
    assert rec['01']['dims'] == 2 and rec['01']['patch_size'] == plan['config']['patch_size']
    p1 = (out / '01_data_audit.html').read_text()
    assert 'The plan' in p1 and 'patch size' in p1 and '2D images' in p1          # the plan is shown
    assert 'width (pixels)' in p1 and 'Example cases' in p1 and p1.count('data:image/png') >= 1
    assert rec['05']['ablation'] == 'architectures_2d'                               # 2D-capable arms only
    arms5 = set(rec['05']['arms']) | set(rec['05']['not_converged'])                # compared, or flagged
    assert {'EfficientNet-B0 + FPN', 'Attention ResUNet + SE'} <= arms5
    assert not any(a in rec['05']['arms'] for a in ('UNETR', 'SwinUNETR'))
    assert rec['07']['tta'] == 'd4'                                                   # flips and 90° rotations
    p7 = (out / '07_tta_postprocessing.html').read_text()
    assert 'TTA (d4)' in p7 and 'precision' in p7 and 'recall' in p7               # binary metrics
    assert 'Binary task' in p7                                                       # the threshold is discussed
    assert 'images/s' in (out / '08_benchmarks.html').read_text()
    idx = (out / 'index.html').read_text()
    prov = run['data']['provenance']
    assert prov['kind'] == ('synthetic' if synthetic else 'derived') and 'derived from' in prov['text']
    banner = 'SYNTHETIC DATA' if synthetic else 'DERIVED DATA'
    assert banner in idx
    for page in [p for p in PAGES if p[:2] in RUN]:
        html = (out / f'{page}.html').read_text()
        assert banner in html, page
        nb = json.loads((out / 'notebooks' / f'{page}.ipynb').read_text())
        assert not any(o.get('output_type') == 'error' for c in nb['cells'] for o in c.get('outputs', [])), page
    return run, rec


def test_slice_dataset_journey(source, slices):
    data, out = slices
    run, rec = _check_common(data, out, source[1])
    assert run['data']['path'] == str(data)
    # slices of one patient: per-patient tables beside the per-case ones, the patient as the unit of the CI
    assert 0 < rec['02']['test_patients'] < rec['02']['test_n']
    assert 0 <= rec['02']['test_patient_dice'] <= 1
    p2 = (out / '02_baseline.html').read_text()
    assert 'held-out test Dice per patient' in p2 and '95% CI' in p2
    one = rec['03']['n_val_patients'] == 1                   # a small split: one validation patient, said so
    assert 1 <= rec['03']['n_val_patients'] < rec['03']['n_val']
    for p in ('03_loss_ablation', '04_augmentation_ablation', '05_architectures'):
        html = (out / f'{p}.html').read_text()
        assert ('All validation cases come from one patient' if one else 'paired per patient') in html, p
    assert 'held-out Dice per patient' in (out / '07_tta_postprocessing.html').read_text()
    assert 'in-plane' in (out / '04_augmentation_ablation.html').read_text()     # 2D transforms listed


def test_tiling_dataset_journey(source, mosaics):
    data, out = mosaics
    run, rec = _check_common(data, out, source[1])
    assert (data / 'tiles.csv').exists()
    audit = read_json(out / 'audit.json')
    assert all(c['channels'] == 3 for c in audit['cases'] if c.get('usable'))     # RGB mosaics
    assert 'RGB' in (out / '01_data_audit.html').read_text()
