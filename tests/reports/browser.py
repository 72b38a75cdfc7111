"""Debian's chromium, headless, as the tests' browser; and a reader of the DOM it dumps.

``dump_dom(page)`` loads ``page`` (a ``file://`` URL) in ``chromium --headless`` and returns the
serialized DOM after parsing; ``screenshot(page, png)`` renders it to a PNG. ``Dom`` collects
what the page tests look at: every ``href``/``src``, the matrix cells (``td.cell`` attributes
and the link inside), the text of elements by id.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

CHROMIUM = shutil.which("chromium")
TIMEOUT = 120.0
VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
                  "source", "track", "wbr"})


def _chromium(*args: str) -> subprocess.CompletedProcess[str]:
    if CHROMIUM is None:
        raise RuntimeError("chromium is not installed")
    # A profile per call: concurrent test workers must not share chromium's profile lock.
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        return subprocess.run(
            [CHROMIUM, "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run",
             f"--user-data-dir={profile}", *args],
            capture_output=True, text=True, timeout=TIMEOUT, check=False,
            stdin=subprocess.DEVNULL)


def dump_dom(page: Path) -> str:
    """The DOM chromium built from ``page``."""
    proc = _chromium("--dump-dom", page.resolve().as_uri())
    assert proc.returncode == 0, f"chromium exit {proc.returncode}: {proc.stderr[-2000:]}"
    assert "<body" in proc.stdout, f"no DOM for {page}: {proc.stderr[-2000:]}"
    return proc.stdout


def screenshot(page: Path, png: Path, size: str = "1200,2400") -> Path:
    """Render ``page`` to ``png`` (``size``: width,height in pixels)."""
    proc = _chromium(f"--window-size={size}", f"--screenshot={png}", page.resolve().as_uri())
    assert proc.returncode == 0, f"chromium exit {proc.returncode}: {proc.stderr[-2000:]}"
    assert png.is_file(), proc.stderr[-2000:]
    return png


class Dom(HTMLParser):
    """What the tests read from a dumped DOM (see the module docstring)."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.cells: list[dict[str, str]] = []
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text_by_id: dict[str, str] = {}
        self._open: list[tuple[str, str | None]] = []
        self._cell: dict[str, str] | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags.append((tag, a))
        for key in ("href", "src"):
            if key in a:
                self.links.append(a[key])
        if tag == "td" and "cell" in a.get("class", "").split():
            self._cell = dict(a)
            self.cells.append(self._cell)
        if tag == "a" and self._cell is not None and "link" not in self._cell:
            self._cell["link"] = a.get("href", "")
        if tag not in VOID:
            self._open.append((tag, a.get("id")))
            if a.get("id"):
                self.text_by_id.setdefault(a["id"], "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._cell = None
        if any(t == tag for t, _ in self._open):  # a stray end tag closes nothing
            while self._open.pop()[0] != tag:
                pass

    def handle_data(self, data: str) -> None:
        for _, ident in self._open:
            if ident:
                self.text_by_id[ident] += data
        if self._cell is not None:
            self._cell["text"] = self._cell.get("text", "") + data


def unresolved(links: list[str], page: Path) -> list[str]:
    """The links of ``page`` that are not relative or name no existing file (fragments pass)."""
    bad = []
    for url in links:
        parts = urlsplit(url)
        if parts.scheme or parts.netloc or url.startswith("/"):
            bad.append(f"{url} (not relative)")
        elif parts.path and not (page.parent / unquote(parts.path)).exists():
            bad.append(f"{url} (no such file)")
    return bad
