"""Citations of the documentation in the sources must point at pages and sections that exist.

Docstrings and comments cite the reference sections of ``docs/`` as ``docs/<page>.md §<n>``,
e.g. ``docs/devices.md §1.1``, ``docs/algorithms.md §4.4-4.6, §5`` or
``docs/algorithms.md §4.4.3 / §4.6.2``. A section number without a page of its own belongs to
the page cited last before it in the same file. For every citation in the package, the tests
and the benchmarks this checks that the page exists and that it has a heading containing
``§<n>`` (for a range ``§a-b`` both ``§a`` and ``§b``). It also checks that no citation of the
former external spec (``spec 4.2``, ``spec section 3``) is left, and that every numbered
heading of ``docs/`` carries its stable anchor (``<a id="s4-4-3"></a>`` for ``§4.4.3``).
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
SOURCE_DIRS = ("analogtrain", "tests", "benchmarks")
THIS = Path(__file__).resolve()

NUM = r"\d+(?:\.\d+)*"
#: a page (``docs/<page>.md``) or a section (``§<n>`` or ``§<a>-<b>``), in order of appearance
TOKEN = re.compile(rf"(?P<page>docs/[A-Za-z0-9_\-]+\.md)|§(?P<sec>{NUM})(?:-(?P<end>{NUM}))?")
#: citations of the former external spec: "spec 4.2", "spec section 3", "spec sections 4 and 5", "spec-1.1"
OLD_SPEC = re.compile(r"\bspec(?:\s+sections?)?[\s-]+\d", re.IGNORECASE)
HEADING_SECTION = re.compile(rf"§({NUM})")


def source_files() -> list[Path]:
    files = []
    for d in SOURCE_DIRS:
        files.extend(p for p in sorted((REPO / d).rglob("*.py")) if p.resolve() != THIS)
    return files


def headings(page: Path) -> list[tuple[int, str]]:
    """(line number, text) of every Markdown heading of ``page``, outside fenced code blocks."""
    out, fenced = [], False
    for no, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(r"#{1,6}\s", line):
            out.append((no, line))
    return out


def sections(page: Path) -> set[str]:
    """The section numbers that headings of ``page`` contain (``§4.4.3`` -> ``"4.4.3"``)."""
    return {n for _, h in headings(page) for n in HEADING_SECTION.findall(h)}


def citations() -> list[tuple[str, int, str, str | None]]:
    """(file:line, line, page, section or None) for every page and section cited in the sources."""
    out = []
    for path in source_files():
        text = path.read_text(encoding="utf-8")
        rel = path.relative_to(REPO).as_posix()
        page = None
        for m in TOKEN.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            where = f"{rel}:{line}"
            if m.group("page"):
                page = m.group("page")
                out.append((where, line, page, None))
                continue
            for sec in (m.group("sec"), m.group("end")):
                if sec is not None:
                    out.append((where, line, page, sec))
    return out


def test_cited_pages_and_sections_exist():
    problems = []
    cache: dict[str, set[str]] = {}
    for where, _, page, sec in citations():
        if page is None:
            problems.append(f"{where}: §{sec} cited without a docs page before it")
            continue
        path = REPO / page
        if not path.is_file():
            problems.append(f"{where}: {page} does not exist")
            continue
        if sec is not None:
            if page not in cache:
                cache[page] = sections(path)
            if sec not in cache[page]:
                problems.append(f"{where}: {page} has no heading containing §{sec}")
    assert not problems, "broken documentation citations:\n" + "\n".join(problems)


def test_the_citations_are_found():
    """Guards the parser: the reference pages are cited, with sections."""
    cited = {(page, sec) for _, _, page, sec in citations() if sec is not None}
    pages = {page for page, _ in cited}
    assert {"docs/devices.md", "docs/pulses.md", "docs/io.md", "docs/algorithms.md", "docs/nn.md"} <= pages
    assert ("docs/algorithms.md", "4.4.3") in cited and ("docs/algorithms.md", "4.6") in cited
    assert len(cited) >= 20


def test_no_citation_of_the_former_spec_is_left():
    left = []
    for path in source_files():
        for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if OLD_SPEC.search(line):
                left.append(f"{path.relative_to(REPO).as_posix()}:{no}: {line.strip()}")
    assert not left, "cite docs/<page>.md §<n> instead of the spec:\n" + "\n".join(left)


def test_numbered_headings_are_unique_and_anchored():
    problems = []
    for page in sorted(DOCS.glob("*.md")):
        lines = page.read_text(encoding="utf-8").splitlines()
        seen: dict[str, int] = {}
        for no, h in headings(page):
            for n in HEADING_SECTION.findall(h):
                if n in seen:
                    problems.append(f"{page.name}:{no}: §{n} also on line {seen[n]}")
                seen[n] = no
                anchor = f'<a id="s{n.replace(".", "-")}"></a>'
                before = [ln for ln in lines[:no - 1] if ln.strip()]
                if not before or before[-1].strip() != anchor:
                    problems.append(f"{page.name}:{no}: §{n} is not preceded by {anchor}")
    assert not problems, "\n".join(problems)


def test_section_links_in_docs_resolve():
    """Links to numbered anchors (``#s4-4-3``, ``algorithms.md#s5``) point at an anchor that exists."""
    anchors = {p.name: set(re.findall(r'<a id="([^"]+)"></a>', p.read_text(encoding="utf-8")))
               for p in DOCS.glob("*.md")}
    problems = []
    for page in sorted(DOCS.glob("*.md")):
        for m in re.finditer(r"\]\((?P<file>[A-Za-z0-9_\-]+\.md)?#(?P<anchor>s\d+(?:-\d+)*)\)",
                             page.read_text(encoding="utf-8")):
            target = m.group("file") or page.name
            if m.group("anchor") not in anchors.get(target, set()):
                problems.append(f"{page.name}: link to {target}#{m.group('anchor')} has no anchor")
    assert not problems, "\n".join(problems)
