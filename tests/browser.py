"""A headless Chromium page for tests of the HTML the library writes (fixtures of conftest.py)."""
import os
import shutil
from pathlib import Path
from typing import NamedTuple

import pytest

INSTALL_HINT = ('needs headless Chromium and Playwright: `apt-get install chromium` and '
                '`pip install playwright` (or set CORRKIT_NO_BROWSER=1 to skip)')


class BrowserPage(NamedTuple):
    page: object
    errors: list


def _unavailable(reason: str):
    if os.environ.get('CORRKIT_NO_BROWSER') == '1':
        pytest.skip(f'browser test skipped (CORRKIT_NO_BROWSER=1): {reason}')
    pytest.fail(f'{reason}; this test {INSTALL_HINT}', pytrace=False)


@pytest.fixture(scope='session')
def _chromium():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if sync_playwright is None:  # outside the except block: one line, no chained traceback
        _unavailable('Playwright is not installed')
    # Playwright's own browser download is not reachable here: use the system's
    executable = shutil.which('chromium') or '/usr/bin/chromium'
    if not Path(executable).is_file():
        _unavailable(f'Chromium not found at {executable}')
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=['--no-sandbox'],
                                             headless=True)
        yield browser
        browser.close()


@pytest.fixture
def browser_page(_chromium):
    """A fresh Playwright page in headless Chromium, and the errors it reports.

    Yields a ``BrowserPage(page, errors)`` named tuple: ``page`` is a
    ``playwright.sync_api.Page`` (viewport 1280 x 800), ``errors`` a list that
    fills with ``'console: <text>'`` for every console message of type
    ``error`` and ``'pageerror: <text>'`` for every uncaught exception, so a
    test ends with ``assert not errors``. Fails with an install hint when
    Chromium or Playwright is missing, unless ``CORRKIT_NO_BROWSER=1`` (then it
    skips).
    """
    context = _chromium.new_context(viewport={'width': 1280, 'height': 800})
    page = context.new_page()
    errors = []
    page.on('console', lambda m: errors.append(f'console: {m.text}') if m.type == 'error' else None)
    page.on('pageerror', lambda e: errors.append(f'pageerror: {e}'))
    yield BrowserPage(page, errors)
    context.close()
