"""Pure planning rules of devlake_project_setup: names, collisions, timeAfter, minimal blueprint PATCH."""

from __future__ import annotations

import datetime as dt

import pytest

from devops_automation.workflows.devlake_project_setup.plan import (
    Repo,
    assign_project_names,
    blueprint_patch,
    compile_patterns,
    dora_metrics,
    merged_connections,
    previous_weekday_midnight,
    render_name,
    sanitise_name,
    selected,
    variable_name,
)

UTC = dt.UTC


def repo(full_name: str, plugin: str = "gitlab", conn: int = 1, scope: str = "11") -> Repo:
    return Repo(plugin, conn, f"{plugin}-conn", scope, full_name, full_name.rsplit("/", 1)[-1])


@pytest.mark.parametrize(
    "anchor, tz, expected",
    [
        (dt.datetime(2026, 11, 23, 9, tzinfo=UTC), "UTC", dt.datetime(2026, 11, 21, tzinfo=UTC)),  # Monday
        (dt.datetime(2026, 11, 21, 10, tzinfo=UTC), "UTC", dt.datetime(2026, 11, 21, tzinfo=UTC)),  # Saturday 10:00
        (
            dt.datetime(2026, 11, 21, 0, tzinfo=UTC),
            "UTC",
            dt.datetime(2026, 11, 14, tzinfo=UTC),
        ),  # exactly Saturday 00:00
        (
            dt.datetime(2026, 11, 20, 23, 30, tzinfo=UTC),
            "Asia/Tokyo",
            dt.datetime(2026, 11, 20, 15, tzinfo=UTC),
        ),  # already Saturday in Tokyo
    ],
)
def test_previous_saturday(anchor, tz, expected) -> None:
    assert previous_weekday_midnight(anchor, tz) == expected


def test_previous_weekday_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        previous_weekday_midnight(dt.datetime(2026, 1, 1), "UTC")
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Base'"):
        previous_weekday_midnight(dt.datetime(2026, 1, 1, tzinfo=UTC), "Mars/Base")
    with pytest.raises(ValueError, match="weekday must be"):
        previous_weekday_midnight(dt.datetime(2026, 1, 1, tzinfo=UTC), "UTC", "caturday")


def test_sanitise_handles_slashes_unicode_controls_and_length() -> None:
    assert sanitise_name("group/sub/proj") == "group-sub-proj"
    assert sanitise_name("Données\tAnalytics\x00") == "Données Analytics"
    assert sanitise_name("服务网关") == "服务网关"
    long = "x" * 150
    name = sanitise_name(long)
    assert len(name) == 100
    assert name != sanitise_name("x" * 149)


def test_template_errors_name_the_fields() -> None:
    with pytest.raises(ValueError, match="fields: plugin, connection"):
        render_name("{repo}", repo("a/b"))
    assert render_name("{plugin}:{full_name}", repo("a/b")) == "gitlab:a-b"


def test_collisions_are_resolved_deterministically_whatever_the_order() -> None:
    a, b, c = (
        repo("acme/api", "github", 1, "5"),
        repo("acme/api", "gitlab", 2, "7"),
        repo("acme-api", "bitbucket", 3, "acme-api"),
    )
    one = assign_project_names([a, b, c])
    two = assign_project_names([c, b, a])
    assert one == two
    assert len(set(one.values())) == 3
    assert one[c.key] == "acme-api"  # bitbucket sorts first by key
    assert one[a.key] == "acme-api-github-1"


def test_existing_owner_keeps_its_name_when_a_new_repo_collides() -> None:
    old, new = repo("acme/api", "gitlab", 2, "7"), repo("acme/api", "bitbucket", 1, "x")
    names = assign_project_names([old, new], owners={"acme-api": old.key})
    assert names[old.key] == "acme-api"
    assert names[new.key] == "acme-api-bitbucket-1"


def test_filters() -> None:
    include, exclude = compile_patterns(["^acme/"], "include"), compile_patterns("archive", "exclude")
    assert selected("acme/api", include, exclude)
    assert not selected("acme/archive-x", include, exclude)
    assert not selected("other/x", include, exclude)
    with pytest.raises(ValueError, match=r"include: '\(' is not a valid regular expression"):
        compile_patterns(["("], "include")


def test_blueprint_patch_is_empty_when_everything_is_in_place() -> None:
    r = repo("acme/api", "gitlab", 2, "7")
    sat = dt.datetime(2026, 11, 21, tzinfo=UTC)
    bp = {
        "connections": [
            {"pluginName": "webhook", "connectionId": 9, "scopes": []},
            {"pluginName": "gitlab", "connectionId": 2, "scopes": [{"scopeId": "7"}]},
        ],
        "timeAfter": "2026-11-21T00:00:00Z",
        "isManual": True,
        "enable": True,
    }
    assert blueprint_patch(bp, r, 9, sat, True) == {}


def test_blueprint_patch_keeps_hand_added_connections_and_fixes_the_rest() -> None:
    r = repo("acme/api", "gitlab", 2, "7")
    bp = {
        "connections": [
            {"pluginName": "jira", "connectionId": 4, "scopes": [{"scopeId": "12"}]},
            {"pluginName": "gitlab", "connectionId": 2, "scopes": [{"scopeId": "7"}, {"scopeId": "8"}]},
        ],
        "timeAfter": "2026-05-21T00:00:00Z",
        "isManual": False,
        "enable": True,
    }
    patch = blueprint_patch(bp, r, 9, dt.datetime(2026, 11, 21, tzinfo=UTC), True)
    assert patch["timeAfter"] == "2026-11-21T00:00:00Z"
    assert patch["isManual"] is True
    assert patch["connections"] == [
        {"pluginName": "jira", "connectionId": 4, "scopes": [{"scopeId": "12"}]},
        {"pluginName": "gitlab", "connectionId": 2, "scopes": [{"scopeId": "7"}]},
        {"pluginName": "webhook", "connectionId": 9, "scopes": []},
    ]


def test_merged_connections_adds_repo_to_an_empty_blueprint() -> None:
    assert merged_connections([], repo("a/b", "github", 3, "99"), None) == [
        {"pluginName": "github", "connectionId": 3, "scopes": [{"scopeId": "99"}]}
    ]


def test_dora_metrics() -> None:
    assert dora_metrics(None) == [{"pluginName": "dora", "pluginOption": {}, "enable": True}]
    assert dora_metrics([{"pluginName": "dora", "pluginOption": {}, "enable": True}]) is None
    assert dora_metrics([{"pluginName": "dora", "enable": False}, {"pluginName": "linker", "enable": True}]) == [
        {"pluginName": "dora", "enable": True},
        {"pluginName": "linker", "enable": True},
    ]


def test_variable_name_is_masked_and_distinct() -> None:
    a, b = variable_name("Données Analytics"), variable_name("Donnees Analytics")
    assert "secret" in a
    assert a != b
    assert a.isascii()
