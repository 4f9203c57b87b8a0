"""projects.yaml: the shipped file, the format, and every error naming file, line and field."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from devops_automation.workflows.daily_project_metrics import projects as pj
from devops_automation.workflows.daily_project_metrics.projects import ProjectsError, PromQuery, Slo

REPO = Path(__file__).resolve().parents[5]
SHIPPED = REPO / "include" / "config" / "projects.yaml"
DAY = 86400
#: 2027-01-15T00:00:00Z, a day boundary: the end of a daily data interval.
END = 1_800_000_000 - 1_800_000_000 % DAY


def parse(text: str) -> list[pj.Project]:
    return pj.parse_projects(textwrap.dedent(text).lstrip("\n"))


def problems(text: str) -> list[str]:
    with pytest.raises(ProjectsError) as info:
        parse(text)
    return [str(p) for p in info.value.problems]


def one_problem(text: str) -> str:
    found = problems(text)
    assert len(found) == 1, found
    return found[0]


# ---- the shipped file ------------------------------------------------------------------------------


def test_the_shipped_file_loads_with_a_project_per_source_mix() -> None:
    projects = pj.load_projects(SHIPPED)
    assert [(p.name, p.sources) for p in projects] == [
        ("api", ("github", "sonarqube", "prometheus")),
        ("web", ("github", "sonarqube", "prometheus")),
        ("shop", ("github",)),
        ("checkout", ("gitlab", "prometheus")),
    ]
    api, web, shop, checkout = projects
    assert api.github == "acme/api" and api.sonarqube == "acme_api" and api.gitlab is None
    assert [q.name for q in api.prometheus] == ["availability", "error_rate", "p95_latency", "requests_per_second"]
    availability = api.query("availability")
    assert availability is not None
    assert (availability.unit, availability.direction, availability.kind) == ("%", pj.HIGHER, "instant")
    assert availability.metric == "prometheus.availability"
    assert [str(s) for s in api.slos] == ["availability >= 99.9", "error_rate < 2", "p95_latency <= 0.25"]
    worst = web.query("worst_error_rate_5m")
    assert worst == PromQuery(
        name="worst_error_rate_5m",
        query=worst.query,
        unit="%",
        direction=pj.LOWER,
        kind="range",
        aggregation="max",
        step_s=300.0,
        description="the worst 5 minutes of the day",
        line=worst.line,
    )
    assert "\n" not in worst.query and worst.query.startswith("100 * sum(rate(")  # folded scalar, one line
    assert shop.prometheus == () and shop.slos == ()
    assert checkout.gitlab == "payments/checkout-api"
    assert checkout.slos == (Slo("p95_latency", "<=", 5.0, pj.LOWER, "s", checkout.slos[0].line),)


def test_the_shipped_names_exist_in_the_sandbox() -> None:
    from include.sandbox.systems import sonarqube
    from include.sandbox.systems.github import ANALYTICS_REPOS, SEED_REPOS

    projects = pj.load_projects(SHIPPED)
    github = {p.github for p in projects if p.github}
    seeded = {f"acme/{name}" for name, *_ in (*SEED_REPOS, *ANALYTICS_REPOS)}
    assert github == {"acme/api", "acme/web", "acme/shop"}
    assert github <= seeded
    assert {p.sonarqube for p in projects if p.sonarqube} <= set(sonarqube.SEED_PROJECTS)
    gitlab_text = (REPO / "include" / "sandbox" / "systems" / "gitlab" / "history.py").read_text()
    assert "payments/checkout-api" in gitlab_text


def test_every_shipped_query_gives_one_series_in_the_sandbox_prometheus() -> None:
    from include.sandbox.app import create_app

    client = TestClient(create_app(systems=["prometheus"]))
    got: dict[tuple[str, str], float] = {}
    for project in pj.load_projects(SHIPPED):
        for q in project.prometheus:
            if q.kind == "instant":
                r = client.get("/prometheus/api/v1/query", params={"query": q.query, "time": END})
                assert r.status_code == 200, (project.name, q.name, r.text)
                (series,) = r.json()["data"]["result"]
                got[(project.name, q.name)] = float(series["value"][1])
            else:
                params = {"query": q.query, "start": END - DAY, "end": END, "step": q.step_s}
                r = client.get("/prometheus/api/v1/query_range", params=params)
                assert r.status_code == 200, (project.name, q.name, r.text)
                (series,) = r.json()["data"]["result"]
                assert len(series["values"]) == DAY / 300 + 1
                got[(project.name, q.name)] = max(float(v) for _, v in series["values"])
    # the units the conventions promise: availability and error rate in %, latency in seconds
    assert 99.0 < got[("api", "availability")] < 100.0  # api-1 is down 10 min a day: 100 - 100 x 10/2880
    assert got[("api", "availability")] == pytest.approx(100 - 100 * 10 / 2880)
    assert 0.5 < got[("api", "error_rate")] < 1.5  # about 1 % 5xx
    assert 0.0 < got[("api", "p95_latency")] < 1.0
    assert got[("checkout", "availability")] == 100.0
    assert 0.0 < got[("web", "worst_error_rate_5m")] < 5.0


# ---- the format ------------------------------------------------------------------------------------


def test_a_project_with_only_one_source_is_valid_and_gitlab_takes_ids_and_paths() -> None:
    projects = parse(
        """
        projects:
          - name: a
            github: acme/a
          - name: b
            gitlab: 2001
          - name: c
            gitlab: "2002"
          - name: d
            gitlab: /payments/mobile/ios-app/
          - name: e
            sonarqube: "acme:e"
          - name: 2024
            github: acme/x
            sonarqube:
        """
    )
    assert [(p.name, p.sources) for p in projects] == [
        ("a", ("github",)),
        ("b", ("gitlab",)),
        ("c", ("gitlab",)),
        ("d", ("gitlab",)),
        ("e", ("sonarqube",)),
        ("2024", ("github",)),
    ]
    assert [p.gitlab for p in projects[1:4]] == [2001, 2002, "payments/mobile/ios-app"]
    assert projects[5].sonarqube is None  # left empty: no such source
    assert [p.line for p in projects] == [2, 4, 6, 8, 10, 12]


def test_conventional_queries_get_their_unit_and_direction_and_range_gets_defaults() -> None:
    (p,) = parse(
        """
        projects:
          - name: svc
            prometheus:
              - {name: availability, query: 'avg(up)'}
              - {name: error_rate, query: 'x', unit: "%", direction: lower_is_better}
              - {name: p95_latency, query: 'y', kind: range}
              - {name: queue, query: 'z', unit: jobs, direction: lower_is_better, kind: range, step: 1h30m}
              - {name: disk, query: w, unit: B, direction: lower_is_better, kind: range, step: 90, aggregation: last}
            slos:
              availability: 99.5
              error_rate: "< 1"
              queue: ' <= 1e3 '
        """
    )
    av, er, p95, queue, disk = p.prometheus
    assert (av.unit, av.direction, av.kind, av.aggregation, av.step_s) == ("%", pj.HIGHER, "instant", None, None)
    assert (er.unit, er.direction) == ("%", pj.LOWER)
    assert (p95.unit, p95.direction, p95.kind, p95.aggregation, p95.step_s) == ("s", pj.LOWER, "range", "avg", 300.0)
    assert (queue.step_s, queue.aggregation) == (5400.0, "avg")
    assert (disk.step_s, disk.aggregation) == (90.0, "last")
    assert [(s.query, s.op, s.target, s.direction, s.unit) for s in p.slos] == [
        ("availability", ">=", 99.5, pj.HIGHER, "%"),  # a bare number: the direction's inclusive operator
        ("error_rate", "<", 1.0, pj.LOWER, "%"),
        ("queue", "<=", 1000.0, pj.LOWER, "jobs"),
    ]


def test_slo_met_honours_strict_and_inclusive_operators() -> None:
    at_least = Slo("availability", ">=", 99.9, pj.HIGHER, "%")
    above = Slo("availability", ">", 99.9, pj.HIGHER, "%")
    at_most = Slo("p95_latency", "<=", 0.5, pj.LOWER, "s")
    below = Slo("p95_latency", "<", 0.5, pj.LOWER, "s")
    assert (at_least.met(99.9), above.met(99.9), above.met(99.91), at_least.met(99.89)) == (True, False, True, False)
    assert (at_most.met(0.5), below.met(0.5), below.met(0.49), at_most.met(0.51)) == (True, False, True, False)
    assert at_least.metric == "prometheus.availability"


def test_anchors_aliases_and_merge_keys_work() -> None:
    projects = parse(
        """
        projects:
          - &base
            name: one
            github: acme/one
            prometheus:
              - {name: availability, query: 'avg(up{job="one"})'}
          - <<: *base
            name: two
        """
    )
    assert [(p.name, p.github, len(p.prometheus)) for p in projects] == [("one", "acme/one", 1), ("two", "acme/one", 1)]


def test_an_empty_project_list_is_valid() -> None:
    assert parse("projects: []\n") == []
    assert parse("projects:\n") == []


@pytest.mark.parametrize(
    "query",
    [
        'sum(rate(http_requests_total{job="api",code=~"5.."}[5m]))',
        "max by (le) (x{path='/a(b'})",  # brackets inside a string do not count
        'x{a="say \\"(\\""}',  # escaped quotes
        "x{a=`raw\\`} # a comment with ( unbalanced",
    ],
)
def test_promql_check_accepts_balanced_queries(query: str) -> None:
    assert pj.promql_problem(query) is None


@pytest.mark.parametrize(
    "query, expected",
    [
        ("sum(rate(x[5m])", "the '(' at position 4 is never closed"),
        ("sum(x))", "the ')' at position 7 closes nothing"),
        ('x{job="api}', 'the quote " at position 7 is never closed'),
        ("rate(x[5m)]", "the ')' at position 10 closes nothing"),
    ],
)
def test_promql_check_names_the_position(query: str, expected: str) -> None:
    assert pj.promql_problem(query) == expected


# ---- errors: each names the file, the line and the field -------------------------------------------


def test_syntax_error_names_the_line() -> None:
    msg = one_problem(
        """
        projects:
          - name: a
            github: [acme/a
        """
    )
    assert msg.startswith("projects.yaml line 4: YAML syntax error:"), msg


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", "projects.yaml line 1: the file is empty: expected a mapping with the key 'projects'"),
        ("- a\n", "projects.yaml line 1: must be a mapping (with the key 'projects'), got a list"),
        ("project: []\n", "projects.yaml line 1, project: unknown field (did you mean projects?); the top-level key"),
        ("projects: acme/api\n", 'projects.yaml line 1, projects: must be a list of projects, got "acme/api"'),
    ],
)
def test_top_level_problems(text: str, expected: str) -> None:
    assert any(p.startswith(expected) for p in problems(text)), problems(text)


def test_missing_name_and_no_source_name_the_project_line() -> None:
    found = problems(
        """
        projects:
          - name: ok
            github: acme/ok
          - description: nothing here
          - name: empty
            description: names no source
        """
    )
    assert found == [
        "projects.yaml line 4, projects[1].name: required (a unique name for the project)",
        (
            "projects.yaml line 4, projects[1]: names no source: give at least one of github, gitlab, sonarqube, "
            "prometheus"
        ),
        (
            "projects.yaml line 5, projects[2]: names no source: give at least one of github, gitlab, sonarqube, "
            'prometheus (project "empty")'
        ),
    ]


def test_duplicate_names_are_found_ignoring_case_and_name_the_first() -> None:
    msg = one_problem(
        """
        projects:
          - name: api
            github: acme/api
          - name: web
            github: acme/web
          - name: API
            sonarqube: acme_api
        """
    )
    assert msg == (
        'projects.yaml line 6, projects[2].name: duplicate name "API" '
        '(first at line 2, projects[0] as "api"; names are compared ignoring case)'
    )


@pytest.mark.parametrize(
    "field, value, expected",
    [
        ("name", "'has space'", "must be 1 to 64 letters, digits"),
        ("github", "acme", 'must be "owner/name" (such as acme/api), got "acme"'),
        ("github", "acme/api/extra", 'must be "owner/name"'),
        ("github", "[acme/api]", 'must be "owner/name" (such as acme/api), got a list'),
        ("gitlab", "0", "a project id must be above 0, got 0"),
        ("gitlab", "payments", "must be a project id (such as 2001) or its full path"),
        ("sonarqube", "'12345'", "must be a SonarQube project key"),
        ("sonarqube", "'acme api'", "must be a SonarQube project key"),
        ("description", "[a]", "must be a string, got a list"),
        ("githb", "acme/api", "unknown field (did you mean github?); a project takes name, description, github"),
    ],
)
def test_bad_project_fields(field: str, value: str, expected: str) -> None:
    text = f"projects:\n  - name: p\n    sonarqube: acme_api\n    {field}: {value}\n"
    if field == "sonarqube":
        text = f"projects:\n  - name: p\n    github: acme/p\n    {field}: {value}\n"
    if field == "name":
        text = f"projects:\n  - github: acme/p\n    {field}: {value}\n"
    with pytest.raises(ProjectsError) as info:
        pj.parse_projects(text)
    found = [str(p) for p in info.value.problems]
    line = 3 if field == "name" else 4
    assert any(p.startswith(f"projects.yaml line {line}, projects[0].{field}: ") and expected in p for p in found), (
        found
    )


def query_problems(*query_lines: str, slos: str = "") -> list[str]:
    body = "".join(f"      {line}\n" for line in query_lines)
    text = f"projects:\n  - name: svc\n    prometheus:\n{body}{slos}"
    with pytest.raises(ProjectsError) as info:
        pj.parse_projects(text)
    return [str(p) for p in info.value.problems]


@pytest.mark.parametrize(
    "lines, expected",
    [
        (
            ["- {name: availability}"],
            "projects.yaml line 4, projects[0].prometheus[0].query: required (the PromQL expression)",
        ),
        (
            ["- {query: up}"],
            "projects.yaml line 4, projects[0].prometheus[0].name: required (a name such as availability)",
        ),
        (
            ["- {name: Avail, query: up}"],
            "projects.yaml line 4, projects[0].prometheus[0].name: must be 1 to 64 lower-case letters",
        ),
        (
            ["- {name: queue, query: up}"],
            'projects.yaml line 4, projects[0].prometheus[0].unit: required for the query queue (such as "%"',
        ),
        (
            ["- {name: queue, query: up, unit: jobs}"],
            (
                "projects.yaml line 4, projects[0].prometheus[0].direction: required for the query queue "
                "(higher_is_better or lower_is_better)"
            ),
        ),
        (
            ["- name: error_rate", "  query: x", "  unit: ratio"],
            (
                'projects.yaml line 6, projects[0].prometheus[0].unit: error_rate is always "%" (multiply a ratio by '
                '100), got "ratio"'
            ),
        ),
        (
            ["- name: p95_latency", "  query: x", "  direction: higher_is_better"],
            (
                'projects.yaml line 6, projects[0].prometheus[0].direction: p95_latency is always "lower_is_better", '
                'got "higher_is_better"'
            ),
        ),
        (
            ["- {name: q, query: x, unit: s, direction: lower_is_beter}"],
            (
                "projects.yaml line 4, projects[0].prometheus[0].direction: must be one of higher_is_better, "
                'lower_is_better (did you mean lower_is_better?), got "lower_is_beter"'
            ),
        ),
        (
            ["- {name: availability, query: x, kind: ranged}"],
            (
                "projects.yaml line 4, projects[0].prometheus[0].kind: must be one of instant, range (did you mean "
                'range?), got "ranged"'
            ),
        ),
        (
            ["- name: availability", "  query: x", "  aggregation: max"],
            "projects.yaml line 6, projects[0].prometheus[0].aggregation: only for kind: range",
        ),
        (
            ["- {name: availability, query: x, kind: range, step: 5 minutes}"],
            "projects.yaml line 4, projects[0].prometheus[0].step: must be a duration from 1s to 1d",
        ),
        (
            ["- {name: availability, query: x, kind: range, step: 2d}"],
            "projects.yaml line 4, projects[0].prometheus[0].step: must be a duration from 1s to 1d",
        ),
        (
            ["- {name: availability, query: x, kind: range, aggregation: median}"],
            "projects.yaml line 4, projects[0].prometheus[0].aggregation: must be one of avg, min, max, last",
        ),
        (
            ["- name: availability", "  query: 'avg(up{job=\"api\"}'"],
            (
                "projects.yaml line 5, projects[0].prometheus[0].query: is not valid PromQL: the '(' at position 4 is "
                "never closed"
            ),
        ),
        (
            ["- {name: availability, query: ' '}"],
            'projects.yaml line 4, projects[0].prometheus[0].query: must be a PromQL expression, got " "',
        ),
        (
            ["- {name: availability, query: x, unti: '%'}"],
            "projects.yaml line 4, projects[0].prometheus[0].unti: unknown field (did you mean unit?); a query takes",
        ),
        (
            ["- {name: availability, query: x}", "- {name: error_rate, query: y}", "- {name: availability, query: z}"],
            (
                'projects.yaml line 6, projects[0].prometheus[2].name: duplicate query name "availability" (first at '
                "line 4, projects[0].prometheus[0])"
            ),
        ),
        (["- up"], "projects.yaml line 4, projects[0].prometheus[0]: must be a mapping (a query with name, query"),
    ],
)
def test_bad_queries(lines: list[str], expected: str) -> None:
    found = query_problems(*lines)
    assert any(p.startswith(expected) for p in found), found


def test_prometheus_must_be_a_non_empty_list() -> None:
    assert problems("projects:\n  - name: a\n    prometheus: []\n") == [
        "projects.yaml line 3, projects[0].prometheus: must not be an empty list (leave prometheus out)"
    ]
    assert problems("projects:\n  - name: a\n    prometheus: {availability: up}\n") == [
        (
            "projects.yaml line 3, projects[0].prometheus: must be a list of named queries (name, query, ...), "
            "got a mapping"
        )
    ]


@pytest.mark.parametrize(
    "slos, expected",
    [
        (
            "    slos:\n      latency: 0.5\n",
            (
                'projects.yaml line 7, projects[0].slos.latency: no Prometheus query named "latency" in this project '
                "(its queries: availability, p95_latency)"
            ),
        ),
        (
            '    slos:\n      availability: "<= 99"\n',
            (
                "projects.yaml line 7, projects[0].slos.availability: the query is higher_is_better, so the operator "
                'must be >= or >, got "<= 99"'
            ),
        ),
        (
            '    slos:\n      p95_latency: ">= 0.5"\n',
            (
                "projects.yaml line 7, projects[0].slos.p95_latency: the query is lower_is_better, so the operator "
                'must be <= or <, got ">= 0.5"'
            ),
        ),
        (
            '    slos:\n      availability: ">= 99.9%"\n',
            (
                "projects.yaml line 7, projects[0].slos.availability: must be an operator and a number, such as "
                '">= 99.9" or "< 0.5" (without the %)'
            ),
        ),
        (
            "    slos:\n      availability: [99]\n",
            "projects.yaml line 7, projects[0].slos.availability: must be an operator and a number",
        ),
        (
            "    slos: [availability]\n",
            "projects.yaml line 6, projects[0].slos: must be a mapping (Prometheus query name -> target",
        ),
    ],
)
def test_bad_slos(slos: str, expected: str) -> None:
    found = query_problems("- {name: availability, query: x}", "- {name: p95_latency, query: y}", slos=slos)
    assert any(p.startswith(expected) for p in found), found


def test_slos_without_prometheus_name_the_missing_list() -> None:
    msg = one_problem(
        """
        projects:
          - name: a
            github: acme/a
            slos:
              availability: 99.9
        """
    )
    assert msg == (
        'projects.yaml line 5, projects[0].slos.availability: no Prometheus query named "availability" in this '
        "project (its queries: none (add a prometheus list))"
    )


def test_every_problem_is_reported_at_once_in_line_order() -> None:
    found = problems(
        """
        projects:
          - name: a
            github: acme
          - name: b
            gitlab: 0
            sonarqube: "1"
          - name: a
            github: acme/a
        """
    )
    assert [p.split(":")[0] for p in found] == [
        "projects.yaml line 3, projects[0].github",
        "projects.yaml line 5, projects[1].gitlab",
        "projects.yaml line 6, projects[1].sonarqube",
    ]
    # the first "a" was invalid, so the second is not a duplicate; the error's text lists all three
    with pytest.raises(
        ProjectsError, match=r"^3 problems in the projects file:\n  projects.yaml line 2, projects\[0\].github"
    ):
        parse("projects:\n  - {name: a, github: acme}\n  - {name: b, gitlab: 0, sonarqube: '1'}\n")


def test_load_names_the_file_by_its_name(tmp_path: Path) -> None:
    path = tmp_path / "team-projects.yaml"
    path.write_text("projects:\n  - name: a\n")
    with pytest.raises(ProjectsError) as info:
        pj.load_projects(path)
    assert str(info.value) == (
        "team-projects.yaml line 2, projects[0]: names no source: give at least one of github, gitlab, sonarqube, "
        'prometheus (project "a")'
    )
    path.write_bytes(b"projects:\n  - name: \xff\n")
    with pytest.raises(ProjectsError, match=r"^team-projects.yaml line 1: not UTF-8 text"):
        pj.load_projects(path)
