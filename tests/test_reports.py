"""The committed reports as a supervisor opens them (issue 21): `reports/index.html` is up to date and reaches every
committed page through links; every local link, image and script of every committed page resolves; and every page
loads in headless Chromium offline, without a console error or a network request."""
import re, subprocess
from collections import deque
from pathlib import Path
from urllib.parse import unquote
import pytest
from conftest import REPO

ROOT = REPO / 'reports'
_SCRIPT = re.compile(r'<script\b[^>]*>.*?</script>', re.S | re.I)
_LINK = re.compile(r'''\b(?:href|src)\s*=\s*["']([^"']*)["']''', re.I)
_SCRIPT_SRC = re.compile(r'''<script\b[^>]*\bsrc\s*=\s*["']([^"']*)["']''', re.I)
_EXTERNAL = ('http:', 'https:', 'data:', 'mailto:', 'javascript:', 'blob:', '#')


def committed(suffix: str) -> list:
    "The committed files under reports/ ending in `suffix` (git's list; the folder's files outside a git checkout)."
    r = subprocess.run(['git', 'ls-files', '-z', 'reports'], cwd=REPO, capture_output=True, text=True)
    files = [REPO / p for p in r.stdout.split('\0') if p] if r.returncode == 0 else list(ROOT.rglob('*'))
    return sorted(p for p in files if p.name.endswith(suffix))


def local_links(page: Path) -> list:
    "The local targets (paths) of a page's links, images and scripts; script bodies are not read as HTML."
    html = page.read_text(errors='replace')
    urls = _SCRIPT_SRC.findall(html) + _LINK.findall(_SCRIPT.sub('', html))
    out = []
    for u in urls:
        u = u.strip()
        if not u or u.lower().startswith(_EXTERNAL): continue
        u = unquote(u.split('#')[0].split('?')[0])
        if u: out.append((page.parent / u).resolve())
    return out


def test_reports_index_is_current():
    from segcore.journey import reports_index_html
    assert (ROOT / 'index.html').read_text() == reports_index_html(ROOT), 'run `segcore reports` and commit it'


def test_every_local_link_resolves_and_every_page_is_reachable():
    pages = committed('.html')
    assert ROOT / 'index.html' in pages and len(pages) > 10
    broken = [f'{p.relative_to(REPO)} → {t}' for p in pages for t in local_links(p) if not t.exists()]
    assert not broken, 'broken local links:\n' + '\n'.join(broken[:40])
    seen, todo = {ROOT / 'index.html'}, deque([ROOT / 'index.html'])
    while todo:
        for t in local_links(todo.popleft()):
            if t.suffix == '.html' and t not in seen and t.is_file():
                seen.add(t)
                todo.append(t)
    unreached = [str(p.relative_to(REPO)) for p in pages if p.resolve() not in seen]
    assert not unreached, 'committed pages no link reaches from reports/index.html:\n' + '\n'.join(unreached)


def test_every_committed_page_in_headless_chromium():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip('playwright is not installed (pip install -e ".[dev]")')
    import shutil
    exe = shutil.which('chromium') or shutil.which('chromium-browser')
    if not exe: pytest.skip('Chromium is not installed (Debian package chromium; .ci/run installs it)')
    problems = []
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=['--no-sandbox'])
        page = b.new_page(viewport={'width': 1280, 'height': 900})
        where = {'page': ''}
        page.on('console', lambda m: problems.append(f"{where['page']}: console {m.type}: {m.text}")
                if m.type == 'error' else None)
        page.on('pageerror', lambda e: problems.append(f"{where['page']}: page error: {e}"))
        local = ('file:', 'data:', 'blob:')
        page.on('request', lambda r: None if r.url.startswith(local)
                else problems.append(f"{where['page']}: network request {r.url}"))
        for f in committed('.html'):
            where['page'] = str(f.relative_to(REPO))
            page.goto(f.as_uri())
            page.wait_for_load_state('load')
            assert page.title() not in ('', 'Notebook'), f'{f}: no page title'
        b.close()
    assert not problems, '\n'.join(problems[:40])
