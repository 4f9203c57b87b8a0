"""The run helpers every workflow's operators share: Param name lists and mapped task outputs."""

from __future__ import annotations

import pytest

from devops_automation.operators.runtime import mapped_results, param_names


def test_param_names_take_lists_or_separated_text_and_name_a_bad_item() -> None:
    assert param_names([" api ", "web"], "projects") == ["api", "web"]
    assert param_names("api, web\nshop", "projects") == ["api", "web", "shop"]
    assert param_names(None, "projects") == param_names("", "projects") == []
    with pytest.raises(ValueError, match=r"projects\[1\] must be a project name, got ''"):
        param_names(["api", ""], "projects", "project name")
    with pytest.raises(ValueError, match="repos must be a list of names, got dict"):
        param_names({"a": 1}, "repos")


def test_mapped_results_flatten_lazy_sequences_and_skip_failed_tasks() -> None:
    assert mapped_results([[{"a": 1}, None, {"b": 2}], None, {"c": 3}, []]) == [{"a": 1}, {"b": 2}, {"c": 3}]
    assert mapped_results(None) == []
