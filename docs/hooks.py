"""MkDocs hook: links from the guides, and from README.md, to files of the repository outside docs/.

MkDocs knows only the files under docs/, so on its own it reports a link such as
``../benchmarks/results/serve.md`` as "not found" and leaves it broken in the site. This hook:

- checks every relative link of README.md and every link of a page that leaves docs/: the target must be a
  file of the repository (not a folder, not outside the repository); a missing one is a warning, which
  ``mkdocs build --strict`` turns into a failed build;
- copies the linked files into the site under ``repo/`` and points the links there, so the built site is
  complete, while the Markdown sources keep plain relative links that also work when read in the repository.

Links inside docs/ are left to MkDocs' own checks (``validation`` in mkdocs.yml). Anchors into repository files
are refused, as nothing here can check them: link the file.
"""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path
from urllib.parse import unquote, urlsplit

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import Files
from mkdocs.structure.pages import Page
from mkdocs.utils import get_relative_url

log = logging.getLogger("mkdocs.hooks.repo_links")  # under "mkdocs": strict mode counts its warnings

SITE_FOLDER = "repo"  # where the linked repository files land in the built site
PLACEHOLDER = "repo-file:"  # a scheme MkDocs leaves alone until on_page_content sets the real address
# An inline link or image: [text](target "title") or ![alt](<target>); reference-style links are not rewritten,
# so MkDocs reports any of them that leaves docs/ as not found.
LINK = re.compile(r'(!?\[[^\]\n]*\]\()(<[^>\n]+>|[^)\s]+)((?:\s+"[^"\n]*")?\))')
FENCE = re.compile(r"^\s*(```|~~~)")
HTML_LINK = re.compile(r'(href|src)="' + re.escape(PLACEHOLDER) + r'([^"]*)"')

_linked: set[str] = set()  # repository paths (posix, from the root) that the pages link to


def _root(config: MkDocsConfig) -> Path:
    return Path(config.config_file_path).resolve().parent


def _links(text: str) -> list[re.Match[str]]:
    """Inline links outside fenced code blocks."""
    found, in_fence = [], False
    offset = 0
    for line in text.splitlines(keepends=True):
        if FENCE.match(line):
            in_fence = not in_fence
        elif not in_fence:
            found.extend(LINK.finditer(text, offset, offset + len(line)))
        offset += len(line)
    return found


def _relative_path(target: str) -> tuple[str, str] | None:
    """(path, anchor) of a relative link; None for web addresses, mail, absolute paths and bare anchors."""
    parts = urlsplit(target.strip("<>"))
    if parts.scheme or parts.netloc or not parts.path or parts.path.startswith("/"):
        return None
    return unquote(parts.path), parts.fragment


def _check(path: Path, root: Path, where: str, target: str) -> str | None:
    """The repository path of a linked file, or None after a warning saying what is wrong."""
    if not path.is_relative_to(root):
        log.warning("%s links to '%s', which is outside the repository", where, target)
    elif not path.exists():
        log.warning("%s links to '%s', but %s does not exist", where, target, path.relative_to(root))
    elif not path.is_file():
        log.warning("%s links to '%s', a folder: link a file (a built site has no folder listings)", where, target)
    else:
        return path.relative_to(root).as_posix()
    return None


def on_pre_build(config: MkDocsConfig) -> None:
    """Check README.md's relative links (it is not part of the site, but it is the front door)."""
    _linked.clear()
    root = _root(config)
    readme = root / "README.md"
    if not readme.exists():
        return
    for match in _links(readme.read_text(encoding="utf-8")):
        link = _relative_path(match.group(2))
        if link is not None:
            _check((root / link[0]).resolve(), root, "README.md", match.group(2))


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Check the links that leave docs/ and point them at the placeholder that on_page_content resolves."""
    root, docs = _root(config), Path(config.docs_dir).resolve()
    where = f"Doc file '{page.file.src_uri}'"
    pieces, end = [], 0
    for match in _links(markdown):
        link = _relative_path(match.group(2))
        if link is None:
            continue
        path = (Path(page.file.abs_src_path).parent / link[0]).resolve()
        if path.is_relative_to(docs):
            continue  # MkDocs checks these itself
        rel = _check(path, root, where, match.group(2))
        if rel is None:
            continue
        if link[1]:
            log.warning(
                "%s links to '%s': anchors into repository files are not checked, link the file", where, match.group(2)
            )
        _linked.add(rel)
        pieces += [markdown[end : match.start(2)], PLACEHOLDER + rel]
        end = match.end(2)
    return "".join(pieces) + markdown[end:]


def on_page_content(html: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Point the placeholders at the copies under repo/, relative to the page."""
    return HTML_LINK.sub(lambda m: f'{m.group(1)}="{get_relative_url(f"{SITE_FOLDER}/{m.group(2)}", page.url)}"', html)


def on_post_build(config: MkDocsConfig) -> None:
    """Copy the linked repository files into the site."""
    root, site = _root(config), Path(config.site_dir)
    for rel in sorted(_linked):
        out = site / SITE_FOLDER / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / rel, out)
