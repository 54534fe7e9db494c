"""The documentation site, built strict by scripts/build_docs.sh and opened in Chromium: every
page loads without a console error, no internal link or anchor is broken, and search finds
``shapley_importance``."""

from __future__ import annotations

import functools
import http.server
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag, urljoin

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]
ROOT = Path(__file__).resolve().parents[2]


class _Links(HTMLParser):
    """Hrefs and element ids of one page."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("id"):
            self.ids.add(str(values["id"]))
        if tag == "a" and values.get("href"):
            self.hrefs.append(str(values["href"]))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The built site served over HTTP (search needs a web worker: no file:// URLs)."""
    pytest.importorskip("mkdocs", reason="the docs extra is not installed")
    folder = tmp_path_factory.mktemp("site")
    build = subprocess.run(
        ["bash", str(ROOT / "scripts" / "build_docs.sh"), str(folder)],
        capture_output=True, text=True, env={"PYTHON": sys.executable, "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def _crawl(page: Any, start: str) -> tuple[dict[str, _Links], list[str]]:
    """Visit every internal page reachable from ``start``; (links per page, console errors)."""
    errors: list[str] = []
    page.on("console", lambda m: m.type == "error" and errors.append(f"{page.url}: {m.text}"))
    page.on("pageerror", lambda e: errors.append(f"{page.url}: {e}"))
    seen: dict[str, _Links] = {}
    queue = [start]
    while queue:
        url = queue.pop()
        if url in seen:
            continue
        response = page.goto(url, wait_until="load")
        assert response is not None and response.ok, f"{url}: HTTP {response and response.status}"
        parsed = _Links()
        parsed.feed(page.content())
        seen[url] = parsed
        for href in parsed.hrefs:
            target, _ = urldefrag(urljoin(url, href))
            if target.startswith(start) and target.endswith("/") and target not in seen:
                queue.append(target)
    return seen, errors


@functools.cache
def _served(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status == 200
    except OSError:
        return False


def test_every_page_loads_without_console_errors_or_broken_links(site, chromium) -> None:
    page = chromium.new_page()
    try:
        pages, errors = _crawl(page, site)
    finally:
        page.close()
    assert len(pages) >= 20, sorted(pages)  # every nav entry was reached
    assert not errors, errors
    broken = []
    for url, links in pages.items():
        for href in links.hrefs:
            target, fragment = urldefrag(urljoin(url, href))
            if not target.startswith(site):  # external: not ours to check offline
                continue
            if target.endswith("/") and target not in pages:
                broken.append(f"{url} -> {href}: page not reached")
            elif target in pages and fragment and fragment not in pages[target].ids:
                broken.append(f"{url} -> {href}: no element #{fragment}")
            elif not target.endswith("/") and not _served(target):  # a file: must be there
                broken.append(f"{url} -> {href}: not served")
    assert not broken, broken[:20]


def test_search_finds_shapley_importance(site, chromium) -> None:
    page = chromium.new_page()
    try:
        page.goto(site, wait_until="load")
        page.locator("label.md-search__icon, .md-search__input").first.click()
        page.locator(".md-search__input").fill("shapley_importance")
        results = page.locator(".md-search-result__item")
        results.first.wait_for(timeout=30_000)
        assert "shapley" in results.first.inner_text().lower()
    finally:
        page.close()
