"""Bad Params of daily_project_metrics fail with the name that is wrong (before any API call)."""

from __future__ import annotations

from pathlib import Path

import pytest

from devops_automation.workflows.daily_project_metrics.operators import _projects

SHIPPED = str(Path(__file__).resolve().parents[5] / "include" / "config" / "projects.yaml")


def test_the_projects_param_picks_projects_by_name_any_case_each_once() -> None:
    assert [p.name for p in _projects(SHIPPED, ["WEB", "api", "web"])] == ["web", "api"]
    assert [p.name for p in _projects(SHIPPED, [])] == ["api", "web", "shop", "checkout"]


def test_an_unknown_project_name_is_named_with_the_file_and_its_projects() -> None:
    expected = r"projects 'nope' not in .*projects\.yaml \(it has api, web, shop, checkout\)"
    with pytest.raises(ValueError, match=expected):
        _projects(SHIPPED, ["api", "nope"])
    with pytest.raises(ValueError, match=r"projects\[0\] must be a project name, got 3"):
        _projects(SHIPPED, [3])
