"""The documentation's relative links lead somewhere: to a file that exists and, with `#anchor`, to
a heading of that file (GitHub's slugs); so do the file names it gives in code spans, and the pages
`.dlt/config.toml` names. Reads files only; starts no process."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from messaging_assets_tests.conftest import REPO_ROOT

DOCS = sorted(
    [
        REPO_ROOT / "README.md",
        REPO_ROOT / "CONTRIBUTING.md",
        *(REPO_ROOT / "docs").glob("*.md"),
        REPO_ROOT / "messaging_assets" / "sandbox" / "README.md",
    ]
)
DOC_IDS = [str(path.relative_to(REPO_ROOT)) for path in DOCS]

FENCE = re.compile(r"^\s*(```|~~~)")
CODE_SPAN = re.compile(r"(`+).*?\1")
# [text](target "title") and ![alt](target); the text may hold brackets one level deep.
INLINE_LINK = re.compile(
    r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]"  # [text] or ![alt]
    r"\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)"  # (target "title")
)
REFERENCE_DEFINITION = re.compile(r"(?m)^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)")
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)(?:\s+#+)?\s*$")
# A code span that is a repo file, `file.py::test_name[params]` included; `$HOME/...` is not.
FILE_SPAN = re.compile(
    r"(?P<path>[\w.][\w./-]*\.(?:py|md|toml|yaml|yml)(?:\.example)?)"
    r"(?:::(?P<test>\w+)(?:\[[^\]]*\])?)?"
)
# Where a path the docs give short (`source/api.py`, `end_to_end/test_pool.py`) starts from.
PATH_BASES = [REPO_ROOT, REPO_ROOT / "messaging_assets", REPO_ROOT / "messaging_assets_tests"]
# Where a bare file name (`test_lists.py`, `journal.py`) is looked for; never .venv.
NAME_ROOTS = [*PATH_BASES[1:], REPO_ROOT / "bench", REPO_ROOT / "instance", REPO_ROOT / ".dlt"]
# Files the user writes and git ignores: the docs say where they go, not that they exist.
USERS_OWN = {".dlt/secrets.toml", "secrets.toml"}
CONFIG_PAGE = re.compile(r"\bdocs/[\w.-]+\.md(?:#[\w-]+)?")


def prose_lines(path: Path) -> list[tuple[int, str]]:
    """The file's lines outside fenced code blocks, numbered from 1."""
    lines, fenced = [], False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            lines.append((number, line))
    return lines


def relative_links(path: Path) -> list[tuple[int, str]]:
    """(line number, target) of every link outside code that stays in the repository: no scheme,
    no host; a bare `#anchor` included. A link's text may run over several lines."""
    numbered = dict(prose_lines(path))
    last = max(numbered, default=0)
    # Code blocks as empty lines and code spans as blanks, so offsets still give line numbers.
    text = "\n".join(
        CODE_SPAN.sub(lambda span: " " * len(span.group()), numbered.get(number, ""))
        for number in range(1, last + 1)
    )
    links = []
    for match in [*INLINE_LINK.finditer(text), *REFERENCE_DEFINITION.finditer(text)]:
        target = match.group(1)
        parts = urlsplit(target)
        if not (parts.scheme or parts.netloc):
            links.append((text.count("\n", 0, match.start()) + 1, target))
    return sorted(links)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text lower-cased, punctuation other than `-` and `_`
    removed, each space a `-`."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text only
    text = text.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The anchors of a Markdown file's headings; a repeated heading gets `-1`, `-2`, ..."""
    seen: Counter[str] = Counter()
    found = set()
    for _, line in prose_lines(path):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        found.add(f"{base}-{seen[base]}" if seen[base] else base)
        seen[base] += 1
    return found


def resolve(doc: Path, target: str) -> tuple[Path, str]:
    """The file a link points at (the document itself for a bare `#anchor`) and its anchor."""
    parts = urlsplit(target)
    path = doc if not parts.path else (doc.parent / unquote(parts.path)).resolve()
    return path, unquote(parts.fragment)


@pytest.mark.parametrize("doc", DOCS, ids=DOC_IDS)
def test_relative_links_point_at_files_that_exist(doc: Path):
    missing = [
        f"{doc.relative_to(REPO_ROOT)}:{number}: {target}"
        for number, target in relative_links(doc)
        if not resolve(doc, target)[0].exists()
    ]

    assert not missing, "links to files that do not exist:\n" + "\n".join(missing)


@pytest.mark.parametrize("doc", DOCS, ids=DOC_IDS)
def test_anchors_point_at_headings_that_exist(doc: Path):
    missing = []
    for number, target in relative_links(doc):
        path, anchor = resolve(doc, target)
        if anchor and path.suffix == ".md" and path.is_file() and anchor not in anchors(path):
            missing.append(f"{doc.relative_to(REPO_ROOT)}:{number}: {target}")

    assert not missing, "links to headings that do not exist:\n" + "\n".join(missing)


def files_named(doc: Path, path: str) -> list[Path]:
    """The repo files a code span's path can mean: from the repo root, the package, the tests or
    the page's folder when it has a folder, anywhere in the code when it is a bare name."""
    if "/" in path:
        return [base / path for base in [*PATH_BASES, doc.parent] if (base / path).is_file()]
    found = [REPO_ROOT / path] if (REPO_ROOT / path).is_file() else []
    return found + [file for root in NAME_ROOTS for file in root.rglob(path) if file.is_file()]


def defines(file: Path, function: str) -> bool:
    return re.search(rf"^\s*(?:async\s+)?def {function}\(", file.read_text(), re.M) is not None


@pytest.mark.parametrize("doc", DOCS, ids=DOC_IDS)
def test_files_named_in_code_spans_exist(doc: Path):
    """`messaging_assets/...py`, `docs/x.md`, `test_x.py::test_y` (the test defined there) and the
    like name files that exist: the pointers a relative link check cannot see."""
    missing = []
    for number, line in prose_lines(doc):
        for span in CODE_SPAN.finditer(line):
            match = FILE_SPAN.fullmatch(span.group().strip("`").strip())
            if not match or match["path"] in USERS_OWN:
                continue
            files = files_named(doc, match["path"])
            test = match["test"]
            if not files or (test and not any(defines(file, test) for file in files)):
                missing.append(f"{doc.relative_to(REPO_ROOT)}:{number}: {span.group()}")

    assert not missing, "files or tests that do not exist:\n" + "\n".join(missing)


def test_pages_named_in_the_dlt_config_exist():
    """Its comments point at pages (and headings) of docs/ that exist."""
    named = CONFIG_PAGE.findall((REPO_ROOT / ".dlt" / "config.toml").read_text(encoding="utf-8"))
    missing = []
    for target in named:
        path, anchor = resolve(REPO_ROOT / "README.md", target)
        if not path.is_file() or (anchor and anchor not in anchors(path)):
            missing.append(target)

    assert named
    assert not missing, "pages or headings that do not exist:\n" + "\n".join(missing)


@pytest.mark.parametrize("doc", DOCS, ids=DOC_IDS)
def test_every_page_has_links_the_checks_see(doc: Path):
    """Each page links somewhere (at least back to the README): the checks above are not empty."""
    assert relative_links(doc)


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Sending is billed: at most once", "sending-is-billed-at-most-once"),
        ("1. The `postgres` extra", "1-the-postgres-extra"),
        ("work_mem", "work_mem"),
        ("Limits, and where they are set", "limits-and-where-they-are-set"),
        ("In tests: the `Sandbox` class", "in-tests-the-sandbox-class"),
        ("What `make bench` measures", "what-make-bench-measures"),
    ],
)
def test_anchors_follow_githubs_slug_rules(heading: str, anchor: str):
    assert slug(heading) == anchor


def test_a_repeated_heading_gets_a_numbered_anchor(tmp_path: Path):
    page = tmp_path / "page.md"
    page.write_text("# Notes\n\n## Notes\n\n```bash\n# not a heading\n```\n", encoding="utf-8")

    assert anchors(page) == {"notes", "notes-1"}


def test_the_readme_links_every_docs_page_and_contributing():
    readme = REPO_ROOT / "README.md"
    linked = {resolve(readme, target)[0] for _, target in relative_links(readme)}

    expected = {*(REPO_ROOT / "docs").glob("*.md"), REPO_ROOT / "CONTRIBUTING.md"}
    assert expected - linked == set()
