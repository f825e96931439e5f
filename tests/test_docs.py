"""The nbdev documentation builds offline (nbdev's processing + nbconvert; Quarto is not needed)."""
import re
from conftest import segcore, REPO


def test_docs_build_offline(tmp_path):
    out = tmp_path / 'docs'
    segcore('docs', '--out', out)
    nbs = sorted(p.stem for p in (REPO / 'nbs').glob('*.ipynb') if p.stem != 'index')  # all, 12a_rundir too
    assert '12a_rundir' in nbs and len(nbs) >= 25
    pages = sorted(p.stem for p in out.glob('*.html') if p.stem != 'index')
    assert pages == nbs
    index = (out / 'index.html').read_text()
    for stem in nbs: assert f'href="{stem}.html"' in index
    cells = re.findall(r'<tr><td><a href="[^"]+">[^<]*</a></td><td>([^<]*)</td></tr>', index)
    assert len(cells) == len(nbs) and all(c.strip() for c in cells), 'a notebook without a description'
    core = (out / '00_core.html').read_text()
    text = re.sub(r'<[^>]+>', '', core)
    assert 'atomic_write_bytes (path, data:bytes)' in text                   # show_doc signature rendered
    assert 'Write data to path atomically' in text                           # … with its docstring
    assert '#| export' not in core and '#| hide' not in core and 'show_doc(' not in text   # directives processed
    assert 'target="_blank" style' not in text                             # no Quarto attribute residue
    assert '<title>core · segcore documentation</title>' in core and '<h1' in core
    report = (out / '20_report.html').read_text()
    assert report.count('src="data:image/png') >= 2, 'the figures the report notebook draws (exec_doc cells)'
    study = (out / '21_study.html').read_text()                  # the committed journey's budget curve, interactive
    assert 'plotly-graph-div' in study and '<script src="plotly.min.js"></script>' in study, 'no plotly figure'
    assert 'plotly.js v' not in study and (out / 'plotly.min.js').read_text()[:40].count('plotly.js v') == 1
    for p in out.glob('*.html'):
        html = p.read_text()
        assert not re.search(r'<(script|link)[^>]+(src|href)="https?://', html), f'{p.name} loads from the net'
        assert not re.search(r'href="https?://segcore\.github\.io', html), f'{p.name}: links the nbdev site'
        assert not re.search(r'^---\s*\ndescription:', re.sub(r'<[^>]+>', '', html), re.M), f'{p.name}: front matter'
