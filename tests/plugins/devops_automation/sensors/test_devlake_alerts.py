"""The DevLake alert texts (pure formatting): durations, links, escaping, the failed tasks shown."""

from __future__ import annotations

from typing import Any

import pytest

from devops_automation.sensors.devlake_alerts import (
    duration,
    failure_message,
    project_url,
    recovered_message,
    stale_message,
    unreachable_message,
)

UI = "https://lake.example.test/"


@pytest.mark.parametrize(
    "seconds, expected",
    [
        pytest.param(0, "0m 00s", id="zero"),
        pytest.param(59, "0m 59s", id="seconds"),
        pytest.param(61, "1m 01s", id="minutes"),
        pytest.param(3599, "59m 59s", id="under-an-hour"),
        pytest.param(3600, "1h 00m", id="one-hour"),
        pytest.param(3 * 3600 + 5 * 60 + 59, "3h 05m", id="hours-drop-seconds"),
        pytest.param("90", "1m 30s", id="numeric-string"),
        pytest.param(90.9, "1m 30s", id="float-truncated"),
        pytest.param(None, "?", id="none"),
        pytest.param("soon", "?", id="garbage"),
    ],
)
def test_duration(seconds: Any, expected: str) -> None:
    assert duration(seconds) == expected


@pytest.mark.parametrize(
    "ui, project, expected",
    [
        pytest.param(UI, "acme", "https://lake.example.test/projects/acme", id="project"),
        pytest.param(UI, "acme/api web", "https://lake.example.test/projects/acme%2Fapi%20web", id="quoted"),
        pytest.param(UI, None, "https://lake.example.test", id="no-project"),
        pytest.param("https://lake.example.test", "", "https://lake.example.test", id="empty-project"),
    ],
)
def test_project_url(ui: str, project: str | None, expected: str) -> None:
    assert project_url(ui, project) == expected


def pipeline(**fields: Any) -> dict[str, Any]:
    return {
        "id": 42,
        "blueprint_id": 7,
        "name": "nightly",
        "status": "TASK_FAILED",
        "spent_seconds": 125,
        "message": "",
        **fields,
    }


FAILED_TASK = {"plugin": "github", "failedSubTask": "collectApiIssues", "message": "401 Bad credentials"}


def test_failure_message_names_project_pipeline_task_and_link() -> None:
    text = failure_message(pipeline(), "acme", [FAILED_TASK], UI)
    lines = text.split("\n")
    assert lines[0] == "❌ <b>DevLake pipeline failed</b>: <b>acme</b>"
    assert lines[1] == "pipeline #42 · blueprint #7 · TASK_FAILED · ran 2m 05s"
    assert lines[2] == "task <code>github/collectApiIssues</code>: 401 Bad credentials"
    assert lines[3] == '<a href="https://lake.example.test/projects/acme">open in DevLake</a>'
    assert len(lines) == 4


@pytest.mark.parametrize(
    "fields, project, tasks, expected_lines",
    [
        pytest.param(
            {"status": "TASK_PARTIAL"},
            "acme",
            [],
            ["❌ <b>DevLake pipeline partially failed</b>: <b>acme</b>"],
            id="partial",
        ),
        pytest.param({}, None, [], ["❌ <b>DevLake pipeline failed</b>: <b>nightly</b>"], id="no-project-uses-name"),
        pytest.param({"name": ""}, None, [], ["❌ <b>DevLake pipeline failed</b>: <b>?</b>"], id="no-name"),
        pytest.param(
            {"blueprint_id": 0},
            "acme",
            [],
            ["pipeline #42 · blueprint #- · TASK_FAILED · ran 2m 05s"],
            id="no-blueprint",
        ),
        pytest.param(
            {"message": "plan invalid"}, "acme", [], ["error: plan invalid"], id="pipeline-error-without-tasks"
        ),
        pytest.param(
            {"message": "plan invalid"},
            "acme",
            [FAILED_TASK],
            ["task <code>github/collectApiIssues</code>: 401 Bad credentials"],
            id="tasks-shown-instead-of-pipeline-error",
        ),
        pytest.param(
            {}, "acme", [{"plugin": "dora", "message": "m"}], ["task <code>dora</code>: m"], id="task-without-subtask"
        ),
        pytest.param({}, "acme", [{"message": "m"}], ["task <code>?</code>: m"], id="task-without-plugin"),
    ],
)
def test_failure_message_variants(fields: dict, project: str | None, tasks: list, expected_lines: list[str]) -> None:
    lines = failure_message(pipeline(**fields), project, tasks, UI).split("\n")
    for expected in expected_lines:
        assert expected in lines, lines
    if fields.get("message") and tasks:
        assert not [line for line in lines if line.startswith("error:")]


def test_failure_message_shows_at_most_five_tasks_and_cuts_long_errors() -> None:
    tasks = [{"plugin": f"p{i}", "failedSubTask": "s", "message": "x" * 900} for i in range(8)]
    lines = failure_message(pipeline(), "acme", tasks, UI).split("\n")
    task_lines = [line for line in lines if line.startswith("task ")]
    assert [line.split("</code>")[0] for line in task_lines] == [f"task <code>p{i}/s" for i in range(5)]
    assert [line.count("x") for line in task_lines] == [500] * 5


def test_failure_message_escapes_html() -> None:
    task = {"plugin": "git<lab>", "failedSubTask": "a&b", "message": "<script>alert(1)</script>"}
    text = failure_message(pipeline(name="<b>evil</b>", status="TASK_<X>"), None, [task], UI)
    assert "<script>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "<b>&lt;b&gt;evil&lt;/b&gt;</b>" in text
    assert "git&lt;lab&gt;/a&amp;b" in text
    assert "TASK_&lt;X&gt;" in text


def test_stale_message() -> None:
    text = stale_message(pipeline(status="TASK_RUNNING", began_at="2026-11-23T06:00:00Z"), "acme", 90.4, UI)
    assert text.split("\n") == [
        "⏳ <b>DevLake pipeline still running</b>: <b>acme</b>",
        "pipeline #42 has been running for more than 90 minutes (since 2026-11-23T06:00:00Z)",
        '<a href="https://lake.example.test/projects/acme">open in DevLake</a>',
    ]
    assert "(since ?)" in stale_message(pipeline(), None, 5, UI)


def test_recovered_message() -> None:
    assert recovered_message(pipeline(status="TASK_COMPLETED"), None, UI).split("\n") == [
        "✅ <b>DevLake pipeline recovered</b>: <b>nightly</b>",
        "pipeline #42 completed after an automatic rerun",
        '<a href="https://lake.example.test">open in DevLake</a>',
    ]


def test_unreachable_message_escapes_and_cuts_the_detail() -> None:
    text = unreachable_message("manual__<1>", "refused <" + "y" * 900)
    assert text.startswith("⚠️ <b>DevLake unreachable</b> while watching pipelines (manual__&lt;1&gt;): refused &lt;")
    assert text.count("y") == 500 - len("refused <")  # the detail is cut to 500 characters before escaping
