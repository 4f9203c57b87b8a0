"""ci_run_action's note and chat texts from an audit row."""

from __future__ import annotations

from devops_automation.workflows.ci_run_action.messages import slack_text, summary, telegram_text

DONE = {
    "state": "done",
    "provider": "github",
    "repo": "acme/api",
    "action": "rerun_failed",
    "run_id": "123",
    "outcome": "success",
    "outcome_detail": "attempt 2 of run 123 finished: success",
    "api_calls": [{"method": "POST", "path": "/repos/acme/api/actions/runs/123/rerun-failed-jobs", "status": 201}],
    "triggered_by": "alice",
    "reason": "flaky <test>",
    "url": "https://github.com/acme/api/actions/runs/123/attempts/2",
}


def test_summary_of_each_state() -> None:
    assert summary(DONE) == (
        "DONE: rerun_failed github acme/api run 123; outcome success: attempt 2 of run 123 finished: success; "
        "sent POST /repos/acme/api/actions/runs/123/rerun-failed-jobs -> 201; by alice: flaky <test>; "
        "https://github.com/acme/api/actions/runs/123/attempts/2"
    )
    refused = {**DONE, "state": "refused", "outcome": "refused", "outcome_detail": "still running", "api_calls": None}
    assert summary(refused).startswith("REFUSED: rerun_failed github acme/api run 123; nothing sent: still running;")
    dry = {**DONE, "state": "dry_run", "plan": {"method": "POST", "path": "/p", "what": "re-run"}, "api_calls": None}
    assert "DRY RUN: rerun_failed" in summary(dry) and "would send POST /p (re-run)" in summary(dry)
    redeploy = {**DONE, "action": "redeploy", "provider": "gitlab", "target_sha": "abcdef123", "environment": "prod"}
    assert summary(redeploy).startswith("DONE: redeploy abcdef1 to prod (gitlab acme/api)")


def test_chat_texts_link_and_escape() -> None:
    assert slack_text(DONE).startswith(
        "*ci_run_action DONE*: rerun_failed github acme/api run 123 <https://github.com/acme/api/actions/runs/123/attempts/2|open>"
    )
    text = telegram_text(DONE)
    assert (
        "flaky &lt;test&gt;" in text
        and '<a href="https://github.com/acme/api/actions/runs/123/attempts/2">open</a>' in text
    )
    assert "<test>" not in text
