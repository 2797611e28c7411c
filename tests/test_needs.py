"""tests/needs.py: a test whose tool is missing is skipped with its reason on a developer's
machine and fails under CI=true, before its fixtures are built; one whose tool is there
runs either way. Checked on a tiny test file in a pytest subprocess."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
TINY = '''
import shutil
import sys
from pathlib import Path

import pytest

from needs import need, needs

FAKE = shutil.which("fer-no-such-tool") is not None          # a tool nobody has
REASON = "needs fer-no-such-tool (apt-get install fer-no-such-tool)"


@pytest.fixture
def built():
    Path("fixture-was-built").touch()


@needs(FAKE, REASON)
def test_marked(built):
    pass


def test_in_body():
    need(FAKE, REASON)


@needs(Path(sys.executable).is_file(), "needs python")         # a tool this run has
def test_present(built):
    need(Path(sys.executable).is_file(), "needs python")
'''


def _run(tmp_path, ci, *tests):
    """pytest on the tiny file's `tests` with CI unset (None) or set to `ci`:
    (the completed process, {outcome: count})."""
    (tmp_path / "test_tiny.py").write_text(TINY)
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS")}
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")])
    if ci is not None:
        env["CI"] = ci
    r = subprocess.run([sys.executable, "-m", "pytest", "-p", "needs", "-p", "no:cacheprovider",
                        "-p", "no:xdist", "--rootdir", str(tmp_path), "-rA",
                        *(f"test_tiny.py::{t}" for t in tests)],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    last = r.stdout.strip().splitlines()[-1]
    return r, {k.rstrip("s"): int(n) for n, k in re.findall(
        r"(\d+) (passed|failed|skipped|errors?)\b", last)}


MISSING = "needs fer-no-such-tool (apt-get install fer-no-such-tool)"


@pytest.mark.parametrize("ci", [None, "false", "0", ""])
def test_missing_tool_skips_outside_ci(tmp_path, ci):
    r, counts = _run(tmp_path, ci, "test_marked", "test_in_body")
    assert counts == {"skipped": 2}, r.stdout
    assert r.returncode == 0
    assert r.stdout.count("SKIPPED [1] test_tiny.py") == 2 and r.stdout.count(MISSING) == 2
    assert "CI=true" not in r.stdout
    assert not (tmp_path / "fixture-was-built").exists()      # skipped before set-up


@pytest.mark.parametrize("ci", ["true", "True", "1"])      # what CI services set
def test_missing_tool_fails_under_ci(tmp_path, ci):
    r, counts = _run(tmp_path, ci, "test_marked", "test_in_body")
    # the mark fails the test at set-up (pytest counts an error), need() in its body fails it
    assert counts == {"error": 1, "failed": 1}, r.stdout
    assert r.returncode == 1
    summary = r.stdout[r.stdout.index("short test summary info"):]
    for line in ("ERROR test_tiny.py::test_marked", "FAILED test_tiny.py::test_in_body"):
        assert f"{line} - Failed: CI=true and a tool this test needs is missing: {MISSING}" \
            in summary, r.stdout
    assert not (tmp_path / "fixture-was-built").exists()      # failed before set-up


@pytest.mark.parametrize("ci", [None, "true"])
def test_present_tool_runs(tmp_path, ci):
    r, counts = _run(tmp_path, ci, "test_present")
    assert counts == {"passed": 1}, r.stdout
    assert (tmp_path / "fixture-was-built").exists()
