"""The README's badges and online-book URL, and CITATION.cff's links, from ``_config.yml``.

``repository.url`` in ``_config.yml`` is the one place the repository URL is set. From
``https://github.com/OWNER/REPO`` follow the online book (GitHub Pages,
``https://OWNER.github.io/REPO/``), the badges of the two workflows in
``.github/workflows`` and CITATION.cff's ``repository-code`` and ``url``.

    python tools/readme_links.py          # print the derived links and the README badge block
    python tools/readme_links.py --check  # exit 1 if README.md or CITATION.cff disagree
    python tools/readme_links.py --write  # rewrite both from _config.yml

The README's badge block sits between the two marker comments ``BEGIN`` and ``END``
below; nothing else in the README is touched.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from urllib.parse import urlsplit

import yaml

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
CITATION = ROOT / "CITATION.cff"
BEGIN = "<!-- links: written by tools/readme_links.py from _config.yml (repository.url); do not edit by hand -->"
END = "<!-- /links -->"
# (badge label, workflow file): the workflows in .github/workflows that get a badge
WORKFLOWS = [("tests", "tests.yml"), ("deploy book", "deploy.yml")]


def repo_url(config: Path = ROOT / "_config.yml") -> str:
    return yaml.safe_load(config.read_text())["repository"]["url"]


def split_github_url(url: str) -> tuple[str, str]:
    """``https://github.com/OWNER/REPO`` -> ``(OWNER, REPO)``; ValueError for anything else."""
    parts = urlsplit(url.strip())
    path = parts.path.strip("/")
    if path.endswith(".git"):
        path = path[: -len(".git")]
    segments = path.split("/")
    if parts.scheme != "https" or parts.netloc.lower() != "github.com" or len(segments) != 2 or not all(segments):
        raise ValueError(f"repository.url must look like https://github.com/OWNER/REPO, not {url!r}")
    return segments[0], segments[1]


def links(url: str) -> dict[str, str]:
    """Every URL derived from the repository URL."""
    owner, repo = split_github_url(url)
    host = f"{owner.lower()}.github.io"
    # A repository named OWNER.github.io is published at the root of that host.
    book = f"https://{host}/" if repo.lower() == host else f"https://{host}/{repo}/"
    out = {"repository": f"https://github.com/{owner}/{repo}", "book": book}
    for _, workflow in WORKFLOWS:
        page = f"{out['repository']}/actions/workflows/{workflow}"
        out[f"{workflow}:page"] = page
        out[f"{workflow}:badge"] = f"{page}/badge.svg"
    return out


def readme_block(url: str) -> str:
    """The README lines between (and including) the markers."""
    d = links(url)
    badges = " ".join(f"[![{label}]({d[f'{wf}:badge']})]({d[f'{wf}:page']})" for label, wf in WORKFLOWS)
    return "\n".join([BEGIN, badges, "", f"**Read the book online: <{d['book']}>**", END])


def citation_fields(url: str) -> dict[str, str]:
    d = links(url)
    return {"repository-code": d["repository"], "url": d["book"]}


def _block_span(text: str) -> tuple[int, int]:
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start or text.count(BEGIN) != 1 or text.count(END) != 1:
        raise ValueError(f"README.md must hold the link block once, between {BEGIN!r} and {END!r}")
    return start, end + len(END)


def current_readme_block(text: str) -> str:
    start, end = _block_span(text)
    return text[start:end]


def rewrite_readme(text: str, url: str) -> str:
    start, end = _block_span(text)
    return text[:start] + readme_block(url) + text[end:]


def _citation_line(key: str) -> re.Pattern[str]:
    # a top-level key (no indentation): `url: ...` inside `references` etc. is left alone
    return re.compile(rf"^{re.escape(key)}:[ \t]*(.*)$", re.MULTILINE)


def rewrite_citation(text: str, url: str) -> str:
    for key, value in citation_fields(url).items():
        pattern = _citation_line(key)
        if not pattern.search(text):
            raise ValueError(f"CITATION.cff has no top-level {key}:")
        text = pattern.sub(lambda _m, k=key, v=value: f'{k}: "{v}"', text, count=1)
    return text


def problems(url: str | None = None) -> list[str]:
    """What disagrees with _config.yml, one message each (empty when all agree)."""
    url = url or repo_url()
    found = []
    try:
        block = current_readme_block(README.read_text())
    except ValueError as exc:
        found.append(str(exc))
    else:
        if block != readme_block(url):
            found.append("README.md: badge/book-URL block is stale; run python tools/readme_links.py --write")
    if CITATION.exists():
        cff = yaml.safe_load(CITATION.read_text())
        for key, value in citation_fields(url).items():
            if cff.get(key) != value:
                found.append(f"CITATION.cff: {key} is {cff.get(key)!r}, expected {value!r}; "
                             "run python tools/readme_links.py --write")
    else:
        found.append("CITATION.cff is missing")
    return found


def main(argv: list[str]) -> int:
    url = repo_url()
    if "--check" in argv:
        found = problems(url)
        for p in found:
            print(p)
        return 1 if found else 0
    if "--write" in argv:
        for path, rewrite in ((README, rewrite_readme), (CITATION, rewrite_citation)):
            old = path.read_text()
            new = rewrite(old, url)
            if new != old:
                path.write_text(new)
                print(f"updated {path.relative_to(ROOT)}")
        return 0
    for key, value in links(url).items():
        print(f"{key:20} {value}")
    print()
    print(readme_block(url))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
