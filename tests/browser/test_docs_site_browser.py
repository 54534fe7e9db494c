"""The documentation site, built strict by scripts/build_docs.sh: no internal link or anchor of
any page is broken; one page of each kind loads in Chromium without a console error; search
finds ``shapley_importance``."""

from __future__ import annotations

import functools
import http.server
import subprocess
import sys
import threading
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag, urljoin

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

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
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
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
        yield f"http://127.0.0.1:{server.server_address[1]}/", folder
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


# One page of each kind (plain, method page with its API, rendered notebook, API reference,
# tables): opened in Chromium for console errors. Every page's links are checked from its HTML.
BROWSED = ("", "methods/permutation/", "gallery/quickstart/", "reference/result/", "file-formats/")


def _pages(folder: Path) -> dict[str, _Links]:
    """Every built page by its URL path ("" for the home page), with its links and ids."""
    pages = {}
    for html in folder.rglob("index.html"):
        parsed = _Links()
        parsed.feed(html.read_text(encoding="utf-8"))
        path = html.parent.relative_to(folder).as_posix()
        pages["" if path == "." else f"{path}/"] = parsed
    return pages


def test_no_internal_link_or_anchor_is_broken(site) -> None:
    url, folder = site
    pages = _pages(folder)
    assert len(pages) >= 20, sorted(pages)
    broken = []
    for page, links in pages.items():
        for href in links.hrefs:
            target, fragment = urldefrag(urljoin(url + page, href))
            if not target.startswith(url):  # external: not ours to check offline
                continue
            path = target[len(url) :]
            if path == "" or path.endswith("/"):
                if path not in pages:
                    broken.append(f"{page} -> {href}: no such page")
                elif fragment and fragment not in pages[path].ids:
                    broken.append(f"{page} -> {href}: no element #{fragment}")
            elif not (folder / path).is_file():
                broken.append(f"{page} -> {href}: no such file")
    assert not broken, broken[:20]


def test_pages_load_in_chromium_without_console_errors(site, chromium) -> None:
    url, _ = site
    page = chromium.new_page()
    errors: list[str] = []
    page.on("console", lambda m: m.type == "error" and errors.append(f"{page.url}: {m.text}"))
    page.on("pageerror", lambda e: errors.append(f"{page.url}: {e}"))
    try:
        for path in BROWSED:
            response = page.goto(url + path, wait_until="load")
            assert response is not None and response.ok, (
                f"{path}: HTTP {response and response.status}"
            )
            assert page.locator("article h1").count() >= 1, f"{path}: no page title"
    finally:
        page.close()
    assert not errors, errors


def test_search_finds_shapley_importance(site, chromium) -> None:
    url, _ = site
    page = chromium.new_page()
    try:
        # Material for MkDocs reads the query on keyup, on focus and when its search worker is
        # ready; ``?q=`` fills the box at load, so the query runs once the index has loaded.
        page.goto(url + "?q=shapley_importance", wait_until="load")
        box = page.locator(".md-search__input")
        results = page.locator(".md-search-result__item")
        for _ in range(24):
            try:
                results.first.wait_for(timeout=5_000)
                break
            except PlaywrightTimeout:
                box.press("End")  # a keyup re-reads the query if the worker was not ready
        results.first.wait_for(timeout=5_000)
        assert box.input_value() == "shapley_importance"
        assert "shapley" in results.first.inner_text().lower()
    finally:
        page.close()
