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
    core = (out / '00_core.html').read_text()
    text = re.sub(r'<[^>]+>', '', core)
    assert 'atomic_write_bytes (path, data:bytes)' in text                   # show_doc signature rendered
    assert 'Write data to path atomically' in text                           # … with its docstring
    assert '#| export' not in core and '#| hide' not in core and 'show_doc(' not in text   # directives processed
    assert 'target="_blank" style' not in text                             # no Quarto attribute residue
    for p in out.glob('*.html'):
        assert not re.search(r'<(script|link)[^>]+(src|href)="https?://', p.read_text()), f'{p.name} loads from the net'
