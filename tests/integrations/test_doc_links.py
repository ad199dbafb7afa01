"""Every relative link in the project's markdown resolves, and the README stays a short page.

Checked files: README.md, CONTRIBUTING.md, BENCHMARKS.md and docs/*.md. A link is `[text](target)`,
`![alt](target)` or a reference definition `[label]: target`, outside fenced code blocks and
inline code. Links with a scheme (http:, https:, mailto:, ...) are skipped. The target must be an
existing file or folder relative to the linking file; a `#anchor` into a markdown file (or a bare
`#anchor` into the linking file) must name one of its headings, slugged as GitHub does.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parents[2]
README_MAX_LINES = 220

_FENCE = re.compile(r"^\s*(`{3,}|~{3,})")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
# [text](target) or ![alt](target), one level of brackets inside the text, an optional "title"
_INLINE_LINK = re.compile(
    r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+[\"'(][^)]*)?\)"
)
_REF_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)")
_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_HTML_ANCHOR = re.compile(r"<a\s[^>]*(?:name|id)=\"([^\"]+)\"", re.IGNORECASE)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def doc_files() -> list[Path]:
    files = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", ROOT / "BENCHMARKS.md"]
    return [f for f in files if f.is_file()] + sorted((ROOT / "docs").glob("*.md"))


def _mask_code_spans(line: str) -> str:
    """Inline code replaced by x's of the same length: a link inside backticks is no link."""
    return _CODE_SPAN.sub(lambda m: "x" * len(m.group(0)), line)


def _prose_lines(text: str):
    """(line number, line) outside fenced code blocks."""
    fence = None
    for number, line in enumerate(text.splitlines(), 1):
        opened = _FENCE.match(line)
        if fence is None and opened:
            fence = opened.group(1)[0] * len(opened.group(1))
            continue
        if fence is not None:
            if line.strip().startswith(fence):
                fence = None
            continue
        yield number, line


def github_slug(heading: str) -> str:
    """GitHub's anchor for a heading: link text kept, lowercase, punctuation but - and _ dropped,
    spaces to '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every anchor a markdown file defines: heading slugs (repeats get -1, -2, ...) and
    <a name/id> tags."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    for _, line in _prose_lines(path.read_text(encoding="utf-8")):
        found.update(_HTML_ANCHOR.findall(line))
        heading = _HEADING.match(line)
        if not heading:
            continue
        slug = github_slug(heading.group(2))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def links(path: Path):
    """(line number, target) of every link in a markdown file."""
    for number, line in _prose_lines(path.read_text(encoding="utf-8")):
        masked = _mask_code_spans(line)
        for match in _INLINE_LINK.finditer(masked):
            yield number, match.group(1)
        definition = _REF_DEF.match(masked)
        if definition:
            yield number, definition.group(1)


def broken_links(files: list[Path], root: Path = ROOT) -> list[str]:
    """'FILE:LINE: target (why)' for every relative link that does not resolve."""
    problems = []
    anchor_cache: dict[Path, set[str]] = {}
    for path in files:
        shown = path.relative_to(root) if path.is_relative_to(root) else path
        for number, target in links(path):
            if not target or _SCHEME.match(target):
                continue
            file_part, _, anchor = target.partition("#")
            dest = (path.parent / unquote(file_part)).resolve() if file_part else path
            if not dest.exists():
                problems.append(f"{shown}:{number}: {target} (no such file or folder)")
                continue
            if anchor and dest.is_file() and dest.suffix.lower() == ".md":
                if dest not in anchor_cache:
                    anchor_cache[dest] = anchors(dest)
                if unquote(anchor).lower() not in anchor_cache[dest]:
                    problems.append(f"{shown}:{number}: {target} (no heading '#{anchor}' there)")
    return problems


def test_every_relative_link_resolves() -> None:
    files = doc_files()
    assert ROOT / "README.md" in files and len(files) > 3
    problems = broken_links(files)
    assert not problems, "broken links:\n" + "\n".join(problems)


def test_readme_is_short() -> None:
    count = len((ROOT / "README.md").read_text(encoding="utf-8").splitlines())
    assert count <= README_MAX_LINES, (
        f"README.md has {count} lines (at most {README_MAX_LINES}): move reference text to docs/"
    )


def test_checker_finds_broken_links(tmp_path: Path) -> None:
    """The checker itself: a missing file, a missing heading and a bad bare anchor are reported
    with file and line; good links, code and URLs are not."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "page.md").write_text(
        "# A page\n## `svpo report` links rows, to trees!\n## Repeat\n## Repeat\n"
    )
    (tmp_path / "README.md").write_text(
        "# Top\n"
        "[ok](docs/page.md) ![img](docs) [a](docs/page.md#svpo-report-links-rows-to-trees)\n"
        "[rep](docs/page.md#repeat-1) [self](#top) [web](https://example.com/x) `[c](nope.md)`\n"
        "```\n[fenced](nope.md)\n```\n"
        "[gone](docs/missing.md)\n"
        "[bad anchor](docs/page.md#no-such-heading) [bad self](#nowhere)\n"
        "[ref]: docs/also-missing.md\n"
    )
    problems = broken_links([tmp_path / "README.md"], root=tmp_path)
    assert problems == [
        "README.md:7: docs/missing.md (no such file or folder)",
        "README.md:8: docs/page.md#no-such-heading (no heading '#no-such-heading' there)",
        "README.md:8: #nowhere (no heading '#nowhere' there)",
        "README.md:9: docs/also-missing.md (no such file or folder)",
    ]
