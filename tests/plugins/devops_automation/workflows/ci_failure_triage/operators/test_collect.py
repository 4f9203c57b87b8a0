"""Bad Params and events of ci_failure_triage's collect step: a clear error naming what is wrong."""

from __future__ import annotations

import pytest

from devops_automation.workflows.ci_failure_triage.operators.collect import TriageCollectOperator


def op(**kw) -> TriageCollectOperator:
    return TriageCollectOperator(task_id="collect", **kw)


def test_project_without_pipeline_id_names_both_params() -> None:
    with pytest.raises(ValueError, match="give both 'project' and 'pipeline_id'"):
        op(project="acme/api")._given_events({})
    with pytest.raises(ValueError, match="give both 'project' and 'pipeline_id'"):
        op(pipeline_id="12")._given_events({})


@pytest.mark.parametrize(
    "event", [{"pipeline_id": "1"}, {"project_id": "1"}, "not-an-object", {"project_id": "", "pipeline_id": "3"}]
)
def test_malformed_webhook_event_is_named(event) -> None:
    with pytest.raises(ValueError, match=r"events\[1\] needs project_id \(or project_path\) and pipeline_id"):
        op(events=[{"project_id": "1", "pipeline_id": "2"}, event])._given_events({})


def test_manual_and_webhook_events_are_read() -> None:
    got = op(events=[{"project_id": "1", "pipeline_id": "2"}], project=" acme/api ", pipeline_id=7)._given_events({})
    assert got == [
        {"project_id": "1", "pipeline_id": "2", "source": "webhook"},
        {"source": "manual", "project_path": "acme/api", "pipeline_id": "7"},
    ]


def test_unknown_project_path_fails_with_gitlabs_answer(sandbox_conns) -> None:
    from devops_automation.hooks.api import ApiError

    with pytest.raises(ApiError, match=r"404"):
        op()._resolve({"source": "manual", "project_path": "no/such-project", "pipeline_id": "1"})
