"""Bad Params of weekly_report fail with what is wrong, before anything is built or sent."""

from __future__ import annotations

import pytest

from devops_automation.workflows.weekly_report.operators import _list, report_kind


def test_report_kind_of_all_projects_and_of_a_team() -> None:
    assert report_kind("week", "") == "weekly"
    assert report_kind("month", "platform") == "monthly:platform"
    with pytest.raises(ValueError, match=r"team 'Platform Team': lower-case letters, digits, - and _"):
        report_kind("week", "Platform Team")


def test_scope_lists_are_sorted_once_and_a_bad_item_is_named() -> None:
    assert _list(["acme/web", "acme/api", "acme/web"], "repos") == ["acme/api", "acme/web"]
    assert _list([], "repos") is None
    with pytest.raises(ValueError, match=r"repos\[1\] must be a name, got None"):
        _list(["acme/api", None], "repos")
