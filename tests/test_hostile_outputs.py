"""Issue 16, the hostile user's catalogue, through the CLI: outputs that overlap inputs or land on files segcore did
not write, evaluations of what is not a label map, tampered run folders, and bad options. Every case is either
refused in one line naming the file (exit status 2, no traceback, nothing on disk changed) or scored with the
problem visible (a partial evaluation says so on its first line). The counts are printed in the test summary."""
import contextlib, hashlib, io, json, os, shutil
import numpy as np
import pytest
import torch
from conftest import segcore, read_json, record_count, REPO
from segcore.io import write_nifti, make_affine, read_image

AFF = make_affine((1., 1., 1.))


def cli(*argv):
    "`segcore ARGV` in this process (the console script's `main`): (exit status, stdout, stderr)."
    from segcore.cli import main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err): rc = main([str(a) for a in argv])
    return rc, out.getvalue(), err.getvalue()


def snapshot(root):
    "Every file (and symlink) under `root` with a hash of its bytes: what a refused command must leave as it was."
    snap = {}
    for p in sorted(root.rglob('*')):
        if p.is_symlink(): snap[str(p.relative_to(root))] = 'link:' + os.readlink(p)
        elif p.is_file(): snap[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
        else: snap[str(p.relative_to(root))] = 'dir'
    return snap


class World:
    "A throw-away copy of the tiny run, a two-case dataset (MSD layout) and a folder of predictions, made on demand."
    def __init__(self, tmp, tiny_run):
        self.tmp, self._tiny = tmp, tiny_run

    @property
    def run(self):
        p = self.tmp / 'run'
        if not p.exists(): shutil.copytree(self._tiny, p)
        return p

    @property
    def ds(self):
        p = self.tmp / 'ds'
        if not p.exists():
            src = read_json(self._tiny / 'summary.json')['data']['path']
            for name, case in (('a', 'phantom_000'), ('b', 'phantom_001')):
                for sub in ('imagesTr', 'labelsTr'):
                    (p / sub).mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(f'{src}/{sub}/{case}.nii.gz', p / sub / f'{name}.nii.gz')
            (p / 'dataset.json').write_text(json.dumps({'labels': {'0': 'background', '1': 'one', '2': 'two'},
                                                        'modality': {'0': 'MRI'}}))
        return p

    def ref(self, case='a'):
        return read_image(self.ds / 'labelsTr' / f'{case}.nii.gz')

    def preds(self, **bad):
        "A prediction folder: the references themselves (Dice 1) for a and b, with `bad` arrays replacing some."
        p = self.tmp / 'pred'
        for case in ('a', 'b'):
            r = self.ref(case)
            write_nifti(bad.get(case, r.array), r.affine, p / f'{case}.nii.gz')
        return p

    def tamper(self, fn, which='best.pt'):
        "Edit the run's checkpoint with `fn(ck)`."
        ck = torch.load(self.run / which, weights_only=True)
        fn(ck)
        torch.save(ck, self.run / which)

    def file(self, name, text='keep me'):
        p = self.tmp / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        return p


CASES = {}   # name -> (group, builder(world) -> dict(argv, rc=2, err=[...], first=None, out=[...], writes=[...]))


def case(group, name):
    def register(f):
        CASES[name] = (group, f)
        return f
    return register


def predict(w, out, inp=None, *extra):
    return ['predict', '--model', w.run, '--input', inp or w.ds / 'imagesTr', '--out', out, '--quiet', *extra]


# 1. outputs never overlap inputs, and replace only segcore's own files ------------------------------------------------
OUT = 'outputs'
for _name, _out, _how in [('predict --out the input folder', lambda w: w.ds / 'imagesTr', 'is the input'),
                          ('predict --out the dataset folder', lambda w: w.ds, 'contains the input'),
                          ("predict --out the dataset's labels", lambda w: w.ds / 'labelsTr', 'lies inside the input'),
                          ('predict --out inside the dataset', lambda w: w.ds / 'pred', 'lies inside the input'),
                          ('predict --out the model folder', lambda w: w.run, 'is the input'),
                          ('predict --out inside the model folder', lambda w: w.run / 'pred', 'lies inside the input'),
                          ('predict --out the parent of everything', lambda w: w.tmp, 'contains the input')]:
    case(OUT, _name)(lambda w, _out=_out, _how=_how: dict(argv=predict(w, _out(w)), err=[_how]))


@case(OUT, 'predict --out the input file')
def _(w):
    f = w.ds / 'imagesTr' / 'a.nii.gz'
    return dict(argv=predict(w, f, f), err=[f'{f}: the output folder is the input {f}'])


@case(OUT, 'predict --out a symlink to the input folder')
def _(w):
    (w.tmp / 'link').symlink_to(w.ds / 'imagesTr')
    return dict(argv=predict(w, w.tmp / 'link'), err=['link: the output folder (', ') is the input'])


@case(OUT, 'predict --out a symlink to the labels')
def _(w):
    (w.tmp / 'link').symlink_to(w.ds / 'labelsTr')
    return dict(argv=predict(w, w.tmp / 'link', w.ds / 'imagesTr' / 'a.nii.gz'), err=['lies inside the input'])


@case(OUT, 'predict --out a folder of the user\'s masks')
def _(w):
    mine = w.file('mine/a.nii.gz', 'a mask I drew')
    return dict(argv=predict(w, mine.parent), err=["holds 'a.nii.gz', which segcore did not write"])


@case(OUT, 'predict --out a folder of other files')
def _(w):
    notes = w.file('docs/notes.txt')
    return dict(argv=predict(w, notes.parent), err=["holds 'notes.txt'"])


@case(OUT, 'predict --out an existing file')
def _(w):
    return dict(argv=predict(w, w.file('notes.txt')), err=['notes.txt: exists and is not a folder'])


@case(OUT, 'predict --out a user file where an uncertainty map would go')
def _(w):
    assert cli(*predict(w, w.tmp / 'p'))[0] == 0                        # a prediction folder of segcore's
    w.file('p/a_entropy.nii.gz', 'mine')
    return dict(argv=predict(w, w.tmp / 'p', None, '--uncertainty'), err=["holds 'a_entropy.nii.gz'"])


@case(OUT, 'predict twice into its own folder (accepted: own files replaced)')
def _(w):
    assert cli(*predict(w, w.tmp / 'p'))[0] == 0
    w.file('p/notes.txt', 'mine, beside the masks')
    def check():
        assert (w.tmp / 'p' / 'notes.txt').read_text() == 'mine, beside the masks'
        m = read_json(w.tmp / 'p' / 'segcore-predict.json')
        assert m['status'] == 'complete' and m['cases'] == ['a', 'b'] and 'a.nii.gz' in m['files']
    return dict(argv=predict(w, w.tmp / 'p'), rc=0, writes=['p'], check=check)


def evaluate(w, js, *extra):
    return ['evaluate', '--pred', w.preds(), '--labels', w.ds, '--json', js, *extra]


for _name, _js, _how in [('evaluate --json onto a prediction', lambda w: w.tmp / 'pred' / 'a.nii.gz', 'lies inside'),
                         ('evaluate --json onto a label', lambda w: w.ds / 'labelsTr' / 'a.nii.gz', 'lies inside'),
                         ('evaluate --json into the dataset', lambda w: w.ds / 'eval.json', 'lies inside'),
                         ('evaluate --json the prediction folder', lambda w: w.tmp / 'pred', 'is the input')]:
    case(OUT, _name)(lambda w, _js=_js, _how=_how: dict(argv=evaluate(w, _js(w)), err=['evaluation JSON', _how]))


@case(OUT, 'evaluate --json onto the checkpoint')
def _(w):
    return dict(argv=['evaluate', '--model', w.run, '--data', w.ds, '--json', w.run / 'best.pt', '--quiet'],
                err=['best.pt: the evaluation JSON lies inside the input'])


@case(OUT, "evaluate --json onto a user's JSON file")
def _(w):
    return dict(argv=evaluate(w, w.file('notes.json', '{"mine": 1}')), err=['notes.json: exists and is not a file'])


@case(OUT, "evaluate --json onto a training summary")
def _(w):
    s = w.run                       # a copy beside: another run's summary is not an evaluation
    shutil.copytree(s, w.tmp / 'other')
    return dict(argv=evaluate(w, w.tmp / 'other' / 'summary.json'), err=['a segcore-train-summary/1 file'])


def train(out, data):
    return ['train', '--data', data, '--out', out, '--profile', 'tiny', '--quiet']


for _name, _out, _how in [('train --out the data folder', lambda w: w.ds, 'is the input'),
                          ('train --out inside the data', lambda w: w.ds / 'run', 'lies inside the input'),
                          ('train --out a parent of the data', lambda w: w.tmp, 'contains the input')]:
    case(OUT, _name)(lambda w, _out=_out, _how=_how: dict(argv=train(_out(w), w.ds), err=['run folder', _how]))


@case(OUT, 'train --out a folder with user files')
def _(w):
    return dict(argv=train(w.file('thesis/thesis.tex').parent, w.ds), err=["holds 'thesis.tex'"])


@case(OUT, 'train --out a file')
def _(w):
    return dict(argv=train(w.file('thesis.tex'), w.ds), err=['thesis.tex: exists and is not a folder'])


def journey(out, data):
    return ['journey', '--data', data, '--out', out, '--profile', 'smoke', '--stages', '01', '--quiet']


for _name, _out, _how in [('journey --out the data', lambda w: w.ds, 'is the input'),
                          ('journey --out inside the data', lambda w: w.ds / 'report', 'lies inside the input'),
                          ('journey --out a parent of the data', lambda w: w.tmp, 'contains the input')]:
    case(OUT, _name)(lambda w, _out=_out, _how=_how: dict(argv=journey(_out(w), w.ds), err=['journey folder', _how]))


@case(OUT, 'journey --out a folder with user files')
def _(w):
    return dict(argv=journey(w.file('thesis/thesis.tex').parent, w.ds), err=["holds 'thesis.tex'"])


@case(OUT, 'audit --json into the data')
def _(w):
    return dict(argv=['audit', w.ds, '--json', w.ds / 'imagesTr' / 'a.nii.gz', '--quiet'], err=['lies inside'])


@case(OUT, "audit --html onto a user's page")
def _(w):
    return dict(argv=['audit', w.ds, '--html', w.file('mine.html', '<html>notes</html>'), '--quiet'],
                err=['mine.html: exists and is not a page segcore wrote'])


@case(OUT, 'split --out onto an image')
def _(w):
    return dict(argv=['split', w.ds, '--out', w.ds / 'labelsTr' / 'a.nii.gz', '--quiet'], err=['lies inside'])


@case(OUT, 'phantom --overwrite onto a real dataset')
def _(w):
    return dict(argv=['phantom', w.ds, '--overwrite', '--n', '2'], err=["holds 'dataset.json'"])


@case(OUT, 'hpo --out inside the data')
def _(w):
    return dict(argv=['hpo', '--space', REPO / 'configs/hpo/unet.json', '--data', w.ds, '--out', w.ds / 'hpo',
                      '--trials', '1'], err=['the HPO folder lies inside the input'])


@case(OUT, 'train on data it cannot read leaves no run folder')
def _(w):
    (w.tmp / 'nodata').mkdir()
    return dict(argv=train(w.tmp / 'r', w.tmp / 'nodata'), err=['cannot recognise the dataset layout'])


# 4. evaluation refuses to score what is not a label map ---------------------------------------------------------------
LAB = 'label maps'


def partial(w, skipped_text, **bad):
    "One bad pair beside a good one: case a is scored, case b is skipped, and the first line says partial."
    js = w.tmp / 'e.json'
    def check():
        e = read_json(js)
        assert e['summary']['partial'] and e['summary']['n_cases'] == 1 and e['summary']['n_expected'] == 2
        assert [s['case'] for s in e['skipped']] == ['b'] and skipped_text in e['skipped'][0]['problem']
        assert {r['case'] for r in e['cases']} == {'a'}
    return dict(argv=['evaluate', '--pred', w.preds(**bad), '--labels', w.ds, '--json', js], rc=0,
                first='partial evaluation: 1 of 2 cases scored; 1 skipped (b: ', out=[skipped_text], writes=['e.json'],
                check=check)


def _b(w, fn, dtype=None):
    a = w.ref('b').array
    return fn(a.astype(dtype) if dtype else a.copy())


@case(LAB, 'prediction whose background is class 3')
def _(w): return partial(w, 'value(s) [3] outside the classes [0, 1, 2]', b=_b(w, lambda a: np.where(a == 0, 3, a)))


@case(LAB, 'prediction whose background is -1')
def _(w): return partial(w, 'negative value(s) (min -1)', b=_b(w, lambda a: np.where(a == 0, -1, a), np.int16))


@case(LAB, 'prediction with NaN')
def _(w): return partial(w, 'NaN/Inf value(s)', b=_b(w, lambda a: np.where(a == 0, np.nan, a), np.float32))


@case(LAB, 'prediction with Inf')
def _(w): return partial(w, '1 NaN/Inf value(s)', b=_b(w, lambda a: np.where(np.arange(a.size).reshape(a.shape) == 0,
                                                                               np.inf, a), np.float32))


@case(LAB, 'prediction of probabilities (fractional floats)')
def _(w): return partial(w, 'non-integer value(s)', b=_b(w, lambda a: a * np.float32(0.4), np.float32))


@case(LAB, 'prediction of another shape')
def _(w): return partial(w, 'differs from the reference', b=_b(w, lambda a: a[:-2]))


@case(LAB, 'prediction on another grid')
def _(w):
    d = partial(w, 'affine differs from the reference')
    write_nifti(w.ref('b').array, make_affine((2., 1., 1.)), w.tmp / 'pred' / 'b.nii.gz')
    return d


@case(LAB, 'reference holding a class the dataset does not declare')
def _(w):
    r = w.ref('b')
    write_nifti(np.where(r.array == 0, 7, r.array).astype(np.uint8), r.affine, w.ds / 'labelsTr' / 'b.nii.gz')
    return partial(w, 'reference holds value(s) [7] outside the classes [0, 1, 2]')


@case(LAB, 'float prediction with whole-number values (accepted: scored)')
def _(w):
    js = w.tmp / 'e.json'
    def check():
        e = read_json(js)
        s = e['summary']
        assert not s['partial'] and s['n_cases'] == 2 and s['mean_foreground_dice'] == 1
    return dict(argv=['evaluate', '--pred', w.preds(b=_b(w, lambda a: a, np.float32)), '--labels', w.ds, '--json', js],
                rc=0, first='n=2 cases', writes=['e.json'], check=check)


@case(LAB, 'reference without a prediction (a missing case)')
def _(w):
    p = w.preds()
    (p / 'b.nii.gz').unlink()
    return dict(argv=['evaluate', '--pred', p, '--labels', w.ds], rc=0,
                first='partial evaluation: 1 of 2 cases scored; 1 reference(s) without a prediction',
                out=['1 reference(s) without a prediction: b'])


@case(LAB, 'prediction without a reference (an extra case)')
def _(w):
    p = w.preds()
    shutil.copyfile(p / 'a.nii.gz', p / 'c.nii.gz')
    return dict(argv=['evaluate', '--pred', p, '--labels', w.ds], rc=0,
                first='partial evaluation: 2 of 3 cases scored; 1 prediction(s) without a reference')


@case(LAB, 'every prediction garbage')
def _(w):
    bad = {c: np.full(w.ref(c).array.shape, 0.5, np.float32) for c in ('a', 'b')}
    return dict(argv=['evaluate', '--pred', w.preds(**bad), '--labels', w.ds],
                err=['no case could be scored (2 skipped'])


@case(LAB, 'empty prediction folder')
def _(w):
    (w.tmp / 'empty').mkdir()
    return dict(argv=['evaluate', '--pred', w.tmp / 'empty', '--labels', w.ds], err=['no prediction image files'])


@case(LAB, 'predictions scored against themselves')
def _(w):
    return dict(argv=['evaluate', '--pred', w.ds / 'labelsTr', '--labels', w.ds], err=['is the reference folder'])


@case(LAB, 'two predictions of one case')
def _(w):
    p = w.preds()
    shutil.copyfile(p / 'a.nii.gz', p / 'a.nii')
    return dict(argv=['evaluate', '--pred', p, '--labels', w.ds], err=['shares its case name with'])


for _t in ('-1', '0', 'nan', 'inf'):
    case(LAB, f'--tolerance-mm {_t}')(lambda w, _t=_t: dict(
        argv=['evaluate', '--pred', w.preds(), '--labels', w.ds, '--tolerance-mm', _t],
        err=['--tolerance-mm must be a finite number of millimetres > 0']))


@case(LAB, '--tolerance-mm with --model')
def _(w):
    return dict(argv=['evaluate', '--model', w.run, '--data', w.ds, '--tolerance-mm', '2'], err=['a run is scored'])


@case(LAB, 'evaluate --model on data without labels')
def _(w):
    shutil.rmtree(w.ds / 'labelsTr')
    return dict(argv=['evaluate', '--model', w.run, '--data', w.ds, '--quiet'], err=['no labelled case in this folder'])


@case(LAB, 'evaluate --model on labels with a class the model lacks')
def _(w):
    r = w.ref('b')
    write_nifti(np.where(r.array == 2, 3, r.array).astype(np.uint8), r.affine, w.ds / 'labelsTr' / 'b.nii.gz')
    (w.ds / 'dataset.json').unlink()                # no declared classes: the loader cannot know; evaluate does
    return dict(argv=['evaluate', '--model', w.run, '--data', w.ds, '--quiet'], rc=0,
                first='partial evaluation: 1 of 2 cases scored; 1 skipped (b: reference holds value(s) [3]')


# 5. run folders are checked on load ----------------------------------------------------------------------------------
RUN = 'run folders'


def predict_tampered(err, *extra):
    return lambda w: dict(argv=predict(w, w.tmp / 'p', w.ds / 'imagesTr' / 'a.nii.gz', *extra), err=err)


_TAMPER = {
    'best.pt without its model': (lambda ck: ck.pop('model'), ['best.pt: checkpoint lacks model']),
    'best.pt without its spec': (lambda ck: ck.pop('model_spec'), ['checkpoint lacks model_spec']),
    'spec of an unknown network': (lambda ck: ck['model_spec'].update(name='nonet'), ["spec 'nonet' does not build"]),
    'spec with other channels': (lambda ck: ck['model_spec'].update(out_channels=5), ['weights do not fit the model']),
    'spec that is not a mapping': (lambda ck: ck.update(model_spec=[1, 2]), ['a model spec needs the keys']),
    'classes the network lacks': (lambda ck: ck.update(classes=[0, 1, 2, 3]), ['do not match the network']),
    'class names as a list': (lambda ck: ck.update(class_names=['a', 'b']), ['class_names must map class numbers']),
    'config in best.pt invalid': (lambda ck: ck['config'].update(patch_size='big'), ['patch_size must be']),
    'config in best.pt unknown key': (lambda ck: ck['config'].update(epoch=3), ["unknown config key 'epoch'"]),
}
for _name, (_fn, _err) in _TAMPER.items():
    @case(RUN, _name)
    def _(w, _fn=_fn, _err=_err):
        w.tamper(_fn)
        return predict_tampered(_err)(w)


@case(RUN, 'best.pt of garbage bytes')
def _(w):
    (w.run / 'best.pt').write_bytes(b'garbage' * 100)
    return predict_tampered(['best.pt: checkpoint cannot be loaded'])(w)


@case(RUN, 'best.pt missing')
def _(w):
    (w.run / 'best.pt').unlink()
    return predict_tampered(['best.pt: checkpoint does not exist'])(w)


@case(RUN, 'config.json that no longer validates')
def _(w):
    (w.run / 'config.json').write_text('{"epochs": -1}')
    return predict_tampered(['config.json): epochs must be an integer >= 1'])(w)


@case(RUN, 'config.json of another fold (evaluate --split val)')
def _(w):
    c = read_json(w.run / 'config.json')
    (w.run / 'config.json').write_text(json.dumps({**c, 'fold': 1}))
    return dict(argv=['evaluate', '--model', w.run, '--data', w.ds, '--split', 'val'],
                err=["config.json: disagrees with best.pt on {'fold': (1, 0)}"])


@case(RUN, 'config.json not JSON')
def _(w):
    (w.run / 'config.json').write_text('{not json')
    return predict_tampered(['config.json: cannot read config.json'])(w)


for _name, _text in [('postprocessing.json not JSON', '{not json'), ('postprocessing.json a list', '[1, 2]'),
                     ('postprocessing.json unknown step', '{"steps": [{"name": "nope"}]}'),
                     ('postprocessing.json step that cannot run',
                      '{"steps": [{"name": "keep_largest_component", "params": {"classes": [0]}}]}'),
                     ('postprocessing.json with a probability threshold outside (0, 1)',
                      '{"steps": [{"name": "binary_threshold", "params": {"threshold": 2}}]}')]:
    @case(RUN, _name)
    def _(w, _text=_text):
        (w.run / 'postprocessing.json').write_text(_text)
        return predict_tampered(['postprocessing.json: not a valid post-processing file'])(w)


@case(RUN, '--postprocess a file that does not exist')
def _(w):
    return predict_tampered(['nope.json: post-processing file does not exist'], '--postprocess', w.tmp / 'nope.json')(w)


@case(RUN, 'run folder missing')
def _(w):
    return dict(argv=['predict', '--model', w.tmp / 'norun', '--input', w.ds / 'imagesTr', '--out', w.tmp / 'p'],
                err=['norun: run folder does not exist'])


@case(RUN, 'summary.json without its data (postprocess)')
def _(w):
    (w.run / 'summary.json').write_text('{}')
    return dict(argv=['postprocess', '--model', w.run, '--quiet'], err=['summary.json: does not name the data'])


# config and options: every field checked before any work starts ----------------------------------------------------
CFG = 'config and options'
for _kv, _err in [('val_every=0', 'val_every must be an integer >= 1'), ('epochs=0', 'epochs must be an integer'),
                  ('patch_size=[3,3,3]', 'cannot take patch_size'), ('lr=nan', 'lr must be a number'),
                  ('fold=9', 'fold 9 does not exist'), ('model=nonet', 'nonet'), ('epoch=3', "unknown config key")]:
    case(CFG, f'train --set {_kv}')(lambda w, _kv=_kv, _err=_err: dict(
        argv=[*train(w.tmp / 'r', w.ds), '--set', _kv], err=[_err]))


@case(CFG, 'train --config of broken YAML (one line)')
def _(w):
    return dict(argv=[*train(w.tmp / 'r', w.ds), '--config', w.file('c.yaml', '{{{')], err=['c.yaml: not valid YAML'])


@case(CFG, 'predict --mc-dropout -2')
def _(w): return predict_tampered(['MC dropout draws must be an integer >= 0'], '--mc-dropout', '-2')(w)


@case(CFG, 'predict --mc-dropout 2 with a model that drops nothing')
def _(w): return predict_tampered(['has no dropout layer'], '--mc-dropout', '2')(w)


@case(CFG, 'phantom --n 0')
def _(w): return dict(argv=['phantom', w.tmp / 'ph', '--n', '0'], err=['--n must be at least 1'])


@case(OUT, 'bench --out inside the data')
def _(w): return dict(argv=['bench', 'metrics', '--data', w.ds, '--out', w.ds / 'bench'], err=['lies inside the input'])


@case(OUT, 'docs --out inside the notebooks')
def _(w):
    from segcore.docs import repo_root
    return dict(argv=['docs', '--out', repo_root() / 'nbs' / 'site'], err=['lies inside the input'])


RESULTS = {}


@pytest.mark.parametrize('name', list(CASES))
def test_hostile_catalogue(name, tiny_run, tmp_path):
    group, build = CASES[name]
    RESULTS[name] = (group, False)
    w = World(tmp_path, tiny_run)
    exp = build(w)
    before = snapshot(tmp_path)
    rc, out, err = cli(*exp['argv'])
    assert 'Traceback' not in out + err and 'internal error' not in err, err
    assert rc == exp.get('rc', 2), (rc, out, err)
    if rc == 2:
        cmd = exp['argv'][0]
        assert err.startswith(f'segcore {cmd}: error: ') and err.count('\n') == 1, err       # one line
    for text in exp.get('err', []): assert text in err, (text, err)
    if 'first' in exp: assert out.splitlines()[0].startswith(exp['first']), out
    for text in exp.get('out', []): assert text in out, (text, out)
    after = snapshot(tmp_path)
    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    allowed = tuple(exp.get('writes', []))
    unexpected = sorted(k for k in changed if not (allowed and k.startswith(allowed)))
    assert not unexpected, f'changed on disk: {unexpected}'
    if 'check' in exp: exp['check']()
    RESULTS[name] = (group, True)


def test_hostile_catalogue_counts():
    "Every case of the catalogue passed; the counts per group are printed in the test summary."
    if not RESULTS: pytest.skip('catalogue not run')
    for g in dict.fromkeys(grp for grp, _ in RESULTS.values()):
        rows = [ok for grp, ok in RESULTS.values() if grp == g]
        record_count(f'hostile catalogue (issue 16), {g}', len(rows), sum(rows))
    assert all(ok for _, ok in RESULTS.values()), [n for n, (_, ok) in RESULTS.items() if not ok]


def test_through_the_console_script(tiny_run, tmp_path):
    "The same refusals through the installed `segcore` script: exit status 2, one line, the input untouched."
    w = World(tmp_path, tiny_run)
    before = snapshot(w.ds)
    r = segcore(*predict(w, w.ds / 'imagesTr'), check=False)
    assert r.returncode == 2 and r.stderr.count('\n') == 1 and 'is the input' in r.stderr, r.stderr
    bad = w.preds(b=np.where(w.ref('b').array == 0, 3, w.ref('b').array))
    r = segcore('evaluate', '--pred', bad, '--labels', w.ds, check=False)
    assert r.returncode == 0 and r.stdout.startswith('partial evaluation: 1 of 2 cases scored'), r.stdout
    r = segcore('evaluate', '--pred', bad, '--labels', w.ds, '--tolerance-mm', '-1', check=False)
    assert r.returncode == 2 and 'Traceback' not in r.stderr and '--tolerance-mm must be' in r.stderr
    assert snapshot(w.ds) == before
