"""benchmarks/mail_intake.py, run as ``make benchmarks`` runs it (smaller huge mails): the table, the
summary line with 100 % decision and field accuracy, and exit 1 as soon as one decision is wrong."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from types import ModuleType

import pytest

from tests.conftest import REPO

SCRIPT = REPO / "benchmarks" / "mail_intake.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mail_intake_benchmark", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_prints_the_table_and_a_perfect_summary_line() -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--huge-mb", "1"], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.strip().splitlines()
    summary = dict(part.split("=", 1) for part in lines[-1].split())
    assert summary["decision_accuracy"] == "1.0000"
    assert summary["field_accuracy"] == "1.0000"
    assert int(summary["cases"]) > 300
    assert (summary["versions"], summary["classes"]) == ("11", "33")
    for label in ("huge_trace", "reply_via_list", "11.0", "17.8"):
        row = next(line for line in lines if line.startswith(label + " "))
        decided = re.search(r"(\d+)/(\d+)", row)
        assert decided and decided.group(1) == decided.group(2), row
    assert sum("3 of 3 jobs kept" in line for line in lines) == 2


def test_a_wrong_decision_fails_the_run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from devops_automation.workflows.ci_failure_triage import mail

    real = mail.classify_mail

    def wrong_on_replies(raw: bytes, **kw: object) -> mail.MailDecision:
        decision = real(raw, **kw)  # type: ignore[arg-type]
        if decision.reason == "reply":  # the behaviour issue 19 reported: a reply became an event
            return mail.MailDecision("accept", "failed", "", decision.message_id, None, None)
        return decision

    monkeypatch.setattr(mail, "classify_mail", wrong_on_replies)
    assert _load().main(["--huge-mb", "0"]) == 1
    out = capsys.readouterr().out
    assert "decision_accuracy=1.0000" not in out
    assert "reply_via_list-11.0-0: decided ('accept', 'failed')" in out
