"""The project carries its own documentation: nothing points outside the
checkout, and every page the README and the docs link to exists."""
import re
import subprocess

from tests.conftest import ROOT

OUTSIDE = "../" + "shared"  # split, so that this file does not match itself
DOCS = ("architecture.md", "replication.md", "operations.md")


def project_files():
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    return [ROOT / name for name in listed if name and (ROOT / name).is_file()]


def test_no_file_points_outside_the_project():
    pointing = []
    for path in project_files():
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        if OUTSIDE in text:
            pointing.append(str(path.relative_to(ROOT)))
    assert pointing == []


def test_the_project_has_its_own_docs():
    for name in DOCS:
        page = ROOT / "docs" / name
        assert page.is_file(), name
        assert len(page.read_text().split()) > 300, f"{name} says too little"


def test_every_docs_page_named_in_the_readme_and_the_docs_exists():
    named = set()
    for page in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]:
        text = page.read_text()
        named |= {(ROOT / m) for m in re.findall(r"`(docs/[\w./-]+\.md)`", text)}
        named |= {(page.parent / m) for m in re.findall(r"\]\(([\w./-]+\.md)\)", text)}
    assert named, "the README names no docs page"
    assert [str(p) for p in named if not p.is_file()] == []
