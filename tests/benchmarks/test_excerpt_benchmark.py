"""benchmarks/excerpt.py's multi-language development set: the manifest (labels and provenance; the logs
are not kept in the repository) is well formed, and the script reports a set beside the CiDiff figures,
scaled down (one budget, no big log), on a set made here: its own logs with labelled lines."""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

ML = REPO / "benchmarks" / "data" / "excerpt_multilang"
#: the CiDiff logs the script always measures (``../shared``), as the excerpt tests need them
DATASET = REPO / ".." / "shared" / "datasets" / "ci-breakages" / "cases"
needs_dataset = pytest.mark.skipif(not DATASET.is_dir(), reason="ci-breakages dataset not present")
PERMISSIVE = {"MIT", "BSD-2-Clause", "BSD-3-Clause", "Apache-2.0", "MPL-2.0", "ISC", "CC0-1.0", "Unlicense"}


def _numbers(ranges: list[str]) -> set[int]:
    out: set[int] = set()
    for r in ranges:
        a, _, b = r.partition("-")
        out.update(range(int(a), int(b or a) + 1))
    return out


def test_manifest_is_well_formed() -> None:
    manifest = json.loads((ML / "manifest.json").read_text())
    cases = manifest["cases"]
    assert len(cases) >= 10
    ids = [c["id"] for c in cases]
    assert len(ids) == len(set(ids))
    for c in cases:
        src = c["source"]
        assert re.fullmatch(r"[\w.-]+/[\w.-]+", src["repo"]), c["id"]
        assert re.fullmatch(r"[0-9a-f]{40}", src["commit"]), c["id"]
        assert src["path"] and src["license"] in PERMISSIVE, c["id"]
        assert c["language"] and c["ci"] and c["failure"] and c["trimmed"]
        assert c["file"] == f"logs/{c['id']}.log.gz", c["id"]
        error = _numbers(c["error"])
        assert error and max(error) <= c["lines"], c["id"]
        assert not error & _numbers(c.get("context", [])), c["id"]
    assert not (ML / "logs").exists(), "fetched logs are not committed (see the set's README)"


PYTEST_LOG = """\
$ pip install -e .
Successfully installed demo-1.0
$ pytest -q
..F.
=================================== FAILURES ===================================
___________________________________ test_sum ___________________________________
    def test_sum():
>       assert add(2, 2) == 5
E       assert 4 == 5
tests/test_add.py:7: AssertionError
1 failed, 3 passed in 0.12s
##[error]Process completed with exit code 1.
"""

TAP_LOG = """\
The command "make" exited with 0.
$ prove -v t/
t/basic.t ..
ok 1 - loads
not ok 2 - parses the header
#   Failed test 'parses the header'
#   at t/basic.t line 12.
Failed 1/2 subtests
The command "prove -v t/" exited with 1.
"""


def _made_set(root: Path) -> dict:
    cases = []
    for cid, text, language, ci, error in (
        ("pytest-gha", PYTEST_LOG, "Python", "GitHub Actions", ["8-10"]),
        ("prove-travis", TAP_LOG, "Perl", "Travis CI", ["5-7"]),
    ):
        (root / "logs").mkdir(parents=True, exist_ok=True)
        (root / "logs" / f"{cid}.log.gz").write_bytes(gzip.compress(text.encode()))
        cases.append(
            {"id": cid, "file": f"logs/{cid}.log.gz", "language": language, "ci": ci, "error": error, "context": []}
        )
    manifest = {"version": 1, "cases": cases}
    (root / "manifest.json").write_text(json.dumps(manifest))
    return manifest


@needs_dataset
def test_benchmark_reports_a_multilang_set(tmp_path: Path) -> None:
    manifest = _made_set(tmp_path)
    out = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "excerpt.py"),
            "--no-big",
            "--budgets",
            "2000",
            "--cases",
            "cv_45",
            "--multilang",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout
    assert "## multi-language development set:" in out
    assert "language Python " in out and "CI Travis CI" in out
    last = dict(kv.split("=", 1) for kv in out.strip().splitlines()[-1].split())
    assert int(last["ml_logs"]) == len(manifest["cases"])
    assert int(last["ml_languages"]) == 2 and int(last["ml_ci_systems"]) == 2
    assert float(last["ml_hit_2000"]) == 1.0  # both failures are short: the excerpt keeps them


@needs_dataset
def test_benchmark_without_the_logs_says_so() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "excerpt.py"), "--no-big", "--budgets", "2000", "--cases", "cv_45"],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    assert "0 of " in done.stderr and "logs present" in done.stderr
    last = dict(kv.split("=", 1) for kv in done.stdout.strip().splitlines()[-1].split())
    assert "ml_logs" not in last or last["ml_logs"] == "0"
