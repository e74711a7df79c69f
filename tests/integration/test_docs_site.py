"""The documentation site builds offline with ``mkdocs build --strict``: a broken link or
anchor, a page left out of the navigation, or an API reference mkdocstrings cannot collect
fails the suite (``make docs`` runs the same build)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml
from markdown.extensions.toc import slugify

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "mkdocs.yml"


def build_site(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    """``mkdocs build --strict`` of ``config`` into ``site``, its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
        cwd=config.parent,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_site_builds_strictly_with_its_api_reference(tmp_path: Path) -> None:
    result = build_site(CONFIG, tmp_path / "site")
    assert result.returncode == 0, result.stdout + result.stderr

    api_page = (tmp_path / "site" / "api" / "index.html").read_text(encoding="utf-8")
    for documented in ("nuclei.api.Segmenter", "nuclei.inference.measure.measure_nuclei"):
        assert f'id="{documented}' in api_page, f"{documented} is missing from the reference"
    pages = {p.parent.name for p in (tmp_path / "site").rglob("index.html")}
    assert {"data", "training", "evaluation-and-prediction", "architecture"} <= pages


def heading_anchors(page: Path) -> set[str]:
    """The anchors of a Markdown page's headings, as the site (and GitHub) name them."""
    headings = re.findall(r"^#+\s+(.+?)\s*$", page.read_text(encoding="utf-8"), re.M)
    return {slugify(heading, "-") for heading in headings}


def test_the_readme_links_to_pages_and_sections_that_exist() -> None:
    """The README is outside the site, so its links to docs/ are checked here."""
    links = re.findall(r"\]\((docs/[^)#\s]+)(?:#([^)\s]+))?\)", (ROOT / "README.md").read_text())
    assert len(links) >= 7
    for target, anchor in links:
        page = ROOT / target
        assert page.exists(), f"README links to a missing {target}"
        if anchor:
            assert anchor in heading_anchors(page), f"README links to a missing {target}#{anchor}"


def test_the_site_needs_no_web_fonts() -> None:
    theme = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))["theme"]
    assert theme["font"] is False


def test_a_broken_anchor_fails_the_build(tmp_path: Path) -> None:
    """The project's validation settings turn a link to a missing section into an error
    (plain mkdocs only logs it)."""
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    for key in ("nav", "plugins", "docs_dir", "site_dir"):
        config.pop(key, None)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# Home\n\nSee [the data](data.md#no-such-section).\n")
    (docs / "data.md").write_text("# Data\n\n## Layouts\n")
    small_config = tmp_path / "mkdocs.yml"
    small_config.write_text(yaml.safe_dump(config))

    result = build_site(small_config, tmp_path / "site")

    assert result.returncode != 0
    assert "no-such-section" in result.stdout + result.stderr
