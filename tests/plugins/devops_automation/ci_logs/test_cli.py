"""``python -m devops_automation.ci_logs``: --lines, --text, --json, --passed, --budget, stdin."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from devops_automation.ci_logs.__main__ import main
from devops_automation.ci_logs.excerpt import excerpt
from devops_automation.ci_logs.models import format_ranges

REPO = Path(__file__).resolve().parents[4]
LOG = "\n".join(
    [f"[INFO] step {i}" for i in range(100)]
    + [
        "[ERROR] /src/app/Cart.java:[42,17] cannot find symbol",
        "[INFO] BUILD FAILURE",
        "GITHUB_TOKEN=gh" + "p_" + "A1b2C3d4" * 4 + "Zz9x",
        "Finished: FAILURE",
    ]
)


@pytest.fixture
def log_file(tmp_path: Path) -> Path:
    path = tmp_path / "fail.log"
    path.write_text(LOG)
    return path


def test_lines_prints_ranges(log_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(log_file), "--lines"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == format_ranges(excerpt(log_file).lines)
    kept = {n for row in out for n in _expand(row)}
    assert 101 in kept
    assert 104 in kept  # the compiler error and the last line
    for row in out:
        a, _, b = row.partition("-")
        assert a.isdigit(), row
        if b:  # a range "a-b" goes up
            assert int(a) < int(b), row


def test_text_is_default_and_redacted(log_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(log_file)]) == 0
    out = capsys.readouterr().out
    assert "101: [ERROR] /src/app/Cart.java:[42,17] cannot find symbol" in out
    assert "A1b2C3d4" not in out
    assert "[REDACTED:" in out


def test_json_has_excerpt_and_classification(
    log_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    passed = tmp_path / "pass.log"
    passed.write_text("\n".join(f"[INFO] step {i}" for i in range(100)) + "\n[INFO] BUILD SUCCESS\n")
    assert main([str(log_file), "--passed", str(passed), "--budget", "500", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["used_passing_log"] is True
    assert data["budget"] == 500
    assert data["chars"] <= 500
    assert data["classification"]["category"] == "compile_error"
    assert set(data["classification"]["evidence_lines"]) <= {n for r in data["lines"] for n in _expand(r)}


def _expand(r: str) -> range:
    a, _, b = r.partition("-")
    return range(int(a), int(b or a) + 1)


def test_subprocess_with_stdin(log_file: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO / "plugins"))
    proc = subprocess.run(
        [sys.executable, "-m", "devops_automation.ci_logs", "-", "--lines", "--budget", "300"],
        input=LOG.encode(),
        capture_output=True,
        env=env,
        cwd=REPO,
        timeout=60,
        check=True,
    )
    rows = proc.stdout.decode().split()
    assert rows
    assert all(r.replace("-", "").isdigit() for r in rows)


def test_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([str(tmp_path / "missing.log")])
    assert exc.value.code == 2
    with pytest.raises(SystemExit):
        main([str(tmp_path / "missing.log"), "--lines", "--json"])  # mutually exclusive
    (tmp_path / "x.log").write_text("x")
    with pytest.raises(SystemExit):
        main([str(tmp_path / "x.log"), "--budget", "0"])
