"""Tests that need an external tool (Node, TF.js node_modules, Chromium, PostgreSQL, Ray):
on a developer's machine a missing tool skips them with its reason; under CI=true it fails
them, so CI cannot go green without running them (.ci/run installs the tools or fails).

    need(available, reason)            in a test or fixture: skip or fail now
    @needs(available, reason)          a mark (also as a module's pytestmark), checked
                                       before any fixture is built (the hooks below,
                                       which conftest.py imports)

Under CI=true a marked test is reported as an error at set-up, one that calls need()
in its body as failed; either way the run fails with the reason, which names the tool
and how to install it."""
import glob
import os
import shutil
from pathlib import Path

import pytest

WEB = Path(__file__).resolve().parents[1] / "web"

# how to get each tool (the reasons below name one of these)
APT_NODE = "Debian: apt-get install nodejs npm; .ci/run installs it"
APT_CHROMIUM = "Debian: apt-get install chromium; .ci/run installs it"
APT_POSTGRESQL = "Debian: apt-get install postgresql; .ci/run installs it"
NPM_WEB = "npm ci --prefix web --no-audit --no-fund; make install does"
PIP = "pip install -r requirements.txt -c requirements.lock; make install does"


def in_ci() -> bool:
    """CI set to anything truthy (true, True, 1, yes): what CI services set."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes", "on")


def need(available, reason: str) -> None:
    """Nothing if `available`; else skip the current test with `reason`, or under CI=true
    fail it (a tool CI should have is missing)."""
    __tracebackhide__ = True            # a skip is reported at the test's line, not here
    if available:
        return
    if in_ci():
        pytest.fail(f"CI=true and a tool this test needs is missing: {reason}", pytrace=False)
    pytest.skip(reason)


def needs(available, reason: str):
    """need() as a mark, checked before the test's fixtures are set up."""
    return pytest.mark.needs(available=bool(available), reason=reason)


def pytest_configure(config):
    config.addinivalue_line("markers", "needs(available, reason): an external tool the test "
                            "needs (tests/needs.py): skipped without it, failed under CI=true")


def _missing(item) -> str:
    """The reasons of the item's @needs marks whose tool is missing, in one line."""
    return "; ".join(m.kwargs["reason"] for m in item.iter_markers("needs")
                     if not m.kwargs["available"])


def pytest_collection_modifyitems(config, items):
    """Not under CI: a test whose tool is missing gets a skip mark (reported at the test)."""
    if in_ci():
        return
    for item in items:
        if missing := _missing(item):
            item.add_marker(pytest.mark.skip(reason=missing))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Under CI=true: a test whose tool is missing fails before its fixtures are set up."""
    if in_ci() and (missing := _missing(item)):
        need(False, missing)


# -- the tools ---------------------------------------------------------------------------

def node() -> bool:
    return shutil.which("node") is not None


def chromium() -> str:
    """Where Debian's chromium is (or would be)."""
    return shutil.which("chromium") or "/usr/bin/chromium"


def web_module(name: str) -> bool:
    """An npm package of web/package.json installed under web/node_modules."""
    return (WEB / "node_modules" / name).is_dir()


def pg_bin(name: str):
    """PostgreSQL's program `name` (on PATH or Debian's /usr/lib/postgresql/<v>/bin), or None."""
    return shutil.which(name) or next(iter(sorted(glob.glob(
        f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
