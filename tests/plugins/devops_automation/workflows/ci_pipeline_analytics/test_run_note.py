"""The run note of ``ci_pipeline_analytics``: the headline figures read from the figures task's output."""

from __future__ import annotations

from devops_automation.workflows.ci_pipeline_analytics.operators import _note


def test_note_gives_success_rates_duration_queue_mttr_alerts_and_failures() -> None:
    total = {
        "runs": 64,
        "success_rate": 0.8906,
        "first_attempt_success_rate": 0.8125,
        "duration_p50_s": 390.0,
        "queue_run_p50_s": 12.4,
        "mttr_s": 5400.0,
    }
    alerts = {"started": 2, "still_firing": 3, "resolved": 1}
    note = _note(5, 70, total, alerts, ["github:acme/gone"])
    assert note == (
        "5 sources, 70 attempts stored; 64 runs: success 89%, first attempt 81%; "
        "duration p50 6.5 min, queue p50 12 s; MTTR 1.5 h; alerts: started 2, still firing 3, resolved 1; "
        "FAILED: github:acme/gone"
    )


def test_note_without_runs_leaves_out_what_has_no_data() -> None:
    note = _note(1, 0, {"runs": 0, "success_rate": None, "first_attempt_success_rate": None}, {}, [])
    assert note == "1 sources, 0 attempts stored; 0 runs: success –, first attempt –"
