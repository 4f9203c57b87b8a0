"""SonarQube Web API (v1) stand-in (sonarqube.md) and its test controls.

Base URL ``http://127.0.0.1:PORT/sonarqube`` (what ``https://sonar.example.com`` is for a server).
Auth: ``Authorization: Bearer <token>`` or HTTP Basic with the token as login and an empty password;
valid token ``squ_sandbox`` (an administrator). A missing or wrong token is 401 with an empty body.
Errors: ``{"errors": [{"msg": "..."}]}``.

Seeded projects (organization ``acme``): ``acme_api`` (gate OK), ``acme_web`` (gate ERROR),
``acme_infra`` (no gate: NONE; no coverage measure at all). Each has ~30 analyses over the 90 days
before the clock's now, for ``search_history``. All measure values are strings; ratings are
"1.0".."5.0". ``api/qualitygates/project_status`` evaluates the gate's conditions against the
current measures, and ``alert_status`` follows it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel

from include.sandbox.systems._common import ApiError, ErrorRoute, basic_credentials, retry_after_headers

NAME = "sonarqube"
PREFIX = "/sonarqube"
DEFAULT_TOKEN = "squ_sandbox"
VERSION = "10.7.0.96327"
ORGANIZATION = "acme"
DAY = 86400

#: key -> (name, type, domain, higherValuesAreBetter, bestValue or None)
METRICS: dict[str, tuple[str, str, str, bool, str | None]] = {
    "coverage": ("Coverage", "PERCENT", "Coverage", True, "100.0"),
    "new_coverage": ("Coverage on New Code", "PERCENT", "Coverage", True, "100.0"),
    "line_coverage": ("Line Coverage", "PERCENT", "Coverage", True, "100.0"),
    "bugs": ("Bugs", "INT", "Reliability", False, "0"),
    "new_bugs": ("New Bugs", "INT", "Reliability", False, "0"),
    "vulnerabilities": ("Vulnerabilities", "INT", "Security", False, "0"),
    "new_vulnerabilities": ("New Vulnerabilities", "INT", "Security", False, "0"),
    "code_smells": ("Code Smells", "INT", "Maintainability", False, "0"),
    "new_code_smells": ("New Code Smells", "INT", "Maintainability", False, "0"),
    "security_hotspots": ("Security Hotspots", "INT", "SecurityReview", False, "0"),
    "security_hotspots_reviewed": ("Security Hotspots Reviewed", "PERCENT", "SecurityReview", True, "100.0"),
    "new_security_hotspots_reviewed": (
        "Security Hotspots Reviewed on New Code",
        "PERCENT",
        "SecurityReview",
        True,
        "100.0",
    ),
    "security_review_rating": ("Security Review Rating", "RATING", "SecurityReview", False, "1.0"),
    "sqale_index": ("Technical Debt", "WORK_DUR", "Maintainability", False, "0"),
    "sqale_debt_ratio": ("Technical Debt Ratio", "PERCENT", "Maintainability", False, "0.0"),
    "sqale_rating": ("Maintainability Rating", "RATING", "Maintainability", False, "1.0"),
    "new_maintainability_rating": ("Maintainability Rating on New Code", "RATING", "Maintainability", False, "1.0"),
    "reliability_rating": ("Reliability Rating", "RATING", "Reliability", False, "1.0"),
    "new_reliability_rating": ("Reliability Rating on New Code", "RATING", "Reliability", False, "1.0"),
    "security_rating": ("Security Rating", "RATING", "Security", False, "1.0"),
    "new_security_rating": ("Security Rating on New Code", "RATING", "Security", False, "1.0"),
    "software_quality_maintainability_rating": ("Maintainability Rating", "RATING", "Maintainability", False, "1.0"),
    "software_quality_reliability_rating": ("Reliability Rating", "RATING", "Reliability", False, "1.0"),
    "software_quality_security_rating": ("Security Rating", "RATING", "Security", False, "1.0"),
    "duplicated_lines_density": ("Duplicated Lines (%)", "PERCENT", "Duplications", False, "0.0"),
    "new_duplicated_lines_density": ("Duplicated Lines on New Code (%)", "PERCENT", "Duplications", False, "0.0"),
    "ncloc": ("Lines of Code", "INT", "Size", False, None),
    "new_lines": ("New Lines", "INT", "Size", False, None),
    "alert_status": ("Quality Gate Status", "LEVEL", "Releasability", True, None),
}
#: "Sonar way" (Clean as You Code) conditions: metric, comparator, error threshold.
SONAR_WAY = [
    ("new_reliability_rating", "GT", "1"),
    ("new_security_rating", "GT", "1"),
    ("new_maintainability_rating", "GT", "1"),
    ("new_coverage", "LT", "80"),
    ("new_duplicated_lines_density", "GT", "3"),
    ("new_security_hotspots_reviewed", "LT", "100"),
]
RATING_GRID = (0.05, 0.1, 0.2, 0.5)  # sonar.technicalDebt.ratingGrid
DEV_COST_MIN_PER_LINE = 30

SEED_PROJECTS = {
    # key: (name, overall measures, new-code measures, gate)
    "acme_api": (
        "acme/api",
        {
            "coverage": 82.6,
            "bugs": 3,
            "vulnerabilities": 0,
            "code_smells": 145,
            "security_hotspots": 2,
            "security_hotspots_reviewed": 50.0,
            "duplicated_lines_density": 3.4,
            "ncloc": 48213,
            "sqale_index": 2310,
            "reliability_rating": 3.0,
            "security_rating": 1.0,
            "security_review_rating": 4.0,
        },
        {
            "new_coverage": 86.1,
            "new_bugs": 0,
            "new_vulnerabilities": 0,
            "new_code_smells": 4,
            "new_duplicated_lines_density": 1.2,
            "new_reliability_rating": 1.0,
            "new_security_rating": 1.0,
            "new_maintainability_rating": 1.0,
            "new_security_hotspots_reviewed": 100.0,
            "new_lines": 812,
        },
        True,
    ),
    "acme_web": (
        "acme/web",
        {
            "coverage": 64.1,
            "bugs": 17,
            "vulnerabilities": 2,
            "code_smells": 611,
            "security_hotspots": 9,
            "security_hotspots_reviewed": 11.1,
            "duplicated_lines_density": 8.9,
            "ncloc": 23950,
            "sqale_index": 41300,
            "reliability_rating": 4.0,
            "security_rating": 3.0,
            "security_review_rating": 5.0,
        },
        {
            "new_coverage": 61.4,
            "new_bugs": 2,
            "new_vulnerabilities": 1,
            "new_code_smells": 23,
            "new_duplicated_lines_density": 5.6,
            "new_reliability_rating": 3.0,
            "new_security_rating": 2.0,
            "new_maintainability_rating": 1.0,
            "new_security_hotspots_reviewed": 0.0,
            "new_lines": 1570,
        },
        True,
    ),
    "acme_infra": (
        "acme/infra",
        {
            "bugs": 0,
            "vulnerabilities": 1,
            "code_smells": 12,
            "security_hotspots": 0,
            "security_hotspots_reviewed": 100.0,
            "duplicated_lines_density": 0.0,
            "ncloc": 3120,
            "sqale_index": 95,
            "reliability_rating": 1.0,
            "security_rating": 2.0,
            "security_review_rating": 1.0,
        },
        {},
        False,
    ),
}


def format_measure(metric: str, value: Any) -> str:
    """SonarQube's string form: ratings and percents with one decimal, counts as integers."""
    if isinstance(value, str):
        return value
    kind = METRICS.get(metric, ("", "FLOAT"))[1]
    if kind in ("INT", "WORK_DUR"):
        return str(round(float(value)))
    if kind in ("PERCENT", "RATING", "FLOAT"):
        return f"{float(value):.1f}"
    return str(value)


def debt_rating(debt_ratio_percent: float) -> float:
    ratio = debt_ratio_percent / 100
    for i, limit in enumerate(RATING_GRID):
        if ratio <= limit:
            return float(i + 1)
    return 5.0


def sonar_date(ts: float) -> str:
    """``2026-01-01T12:00:00+0000``, SonarQube's date-time format."""
    return datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


@dataclass
class Analysis:
    key: str
    date: float
    version: str
    values: dict[str, str]


@dataclass
class Project:
    key: str
    name: str
    measures: dict[str, str]  # metric -> value (new_* metrics are reported as period values)
    gate: list[tuple[str, str, str]] | None
    analyses: list[Analysis] = field(default_factory=list)
    branches: dict[str, dict[str, str]] = field(default_factory=dict)  # non-main branch -> measures
    pull_requests: dict[str, dict[str, str]] = field(default_factory=dict)
    visibility: str = "public"

    @property
    def last_analysis(self) -> float | None:
        return self.analyses[-1].date if self.analyses else None


@dataclass
class SonarState:
    now: Callable[[], float]
    tokens: dict[str, bool] = field(default_factory=lambda: {DEFAULT_TOKEN: True})  # token -> admin
    projects: dict[str, Project] = field(default_factory=dict)
    status: str = "UP"
    counts: dict[str, int] = field(default_factory=dict)

    def count(self, key: str) -> None:
        self.counts[key] = self.counts.get(key, 0) + 1


def derive(measures: dict[str, str]) -> None:
    """Fill in debt ratio, maintainability ratings and the software_quality_* ratings."""
    if "sqale_index" in measures and "ncloc" in measures and float(measures["ncloc"]) > 0:
        ratio = 100 * float(measures["sqale_index"]) / (float(measures["ncloc"]) * DEV_COST_MIN_PER_LINE)
        measures["sqale_debt_ratio"] = format_measure("sqale_debt_ratio", ratio)
        measures["sqale_rating"] = format_measure("sqale_rating", debt_rating(ratio))
    for classic, mqr in (
        ("sqale_rating", "maintainability"),
        ("reliability_rating", "reliability"),
        ("security_rating", "security"),
    ):
        if classic in measures:
            measures[f"software_quality_{mqr}_rating"] = measures[classic]
    if "coverage" in measures:
        measures["line_coverage"] = format_measure("line_coverage", min(100.0, float(measures["coverage"]) + 1.3))


def _seed_history(project: Project, rng: random.Random, now: float) -> None:
    derived = ("line_coverage", "sqale_debt_ratio")
    current = {
        k: float(v)
        for k, v in project.measures.items()
        if METRICS.get(k, ("", ""))[1] in ("INT", "PERCENT", "WORK_DUR")
        and not k.startswith("new_")
        and k not in derived
    }
    start = {k: v * rng.uniform(0.8, 1.1) for k, v in current.items()}
    start = {k: min(v, 100.0) if METRICS[k][1] == "PERCENT" else v for k, v in start.items()}
    count = 30
    for n in range(count):
        ts = now - (90 - 3 * n) * DAY + rng.randint(0, 3600) - 4 * 3600
        frac = n / (count - 1)
        values: dict[str, str] = {}
        for k, v in current.items():
            if k == "coverage" and n < 3:
                continue  # early analyses had no coverage report
            mid = start[k] + (v - start[k]) * frac
            values[k] = format_measure(k, v if n == count - 1 else mid)
        for k in ("reliability_rating", "security_rating"):
            if k in project.measures:
                values[k] = project.measures[k]
        # the new-code measures (what the quality gate reads) as every analysis computed them: the last
        # analysis' gate is the project's current gate, as on a real server
        values.update({k: v for k, v in project.measures.items() if k.startswith("new_")})
        derive(values)
        project.analyses.append(Analysis(f"AX{project.key[-3:].upper()}{n:04d}", ts, f"1.{n // 5}.0", values))


def make_state(seed: int, sandbox: Any) -> SonarState:
    state = SonarState(now=lambda: sandbox.clock.now())
    now = state.now()
    rng = random.Random(seed)
    for key, (name, overall, new, has_gate) in SEED_PROJECTS.items():
        measures = {k: format_measure(k, v) for k, v in {**overall, **new}.items()}
        derive(measures)
        project = Project(key, name, measures, list(SONAR_WAY) if has_gate else None)
        _seed_history(project, rng, now)
        project.branches["develop"] = (
            {**measures, "coverage": format_measure("coverage", float(measures.get("coverage", 50)) - 2.5)}
            if "coverage" in measures
            else dict(measures)
        )
        project.pull_requests["42"] = {k: v for k, v in measures.items() if k.startswith("new_")}
        state.projects[key] = project
    return state


# -- errors, auth, paging --------------------------------------------------------------------------
def error_response(status: int, message: str, retry_after: float | None) -> Response:
    headers = retry_after_headers(retry_after)
    if status == 401:
        return Response(status_code=401, headers=headers)
    return JSONResponse({"errors": [{"msg": message}]}, status_code=status, headers=headers)


class SonarError(ApiError):
    def __init__(self, status: int, message: str = "") -> None:
        super().__init__(message)
        self.status, self.message = status, message

    def response(self) -> Response:
        return error_response(self.status, self.message, None)


def sonar_state(request: Request) -> SonarState:
    return request.app.state.sandbox.state(NAME)


def authenticate(request: Request, admin: bool = False) -> SonarState:
    state = sonar_state(request)
    state.count("requests")
    authorization = request.headers.get("authorization", "")
    scheme, _, value = authorization.partition(" ")
    credentials = basic_credentials(authorization)
    token: str | None = None
    if scheme.lower() == "bearer":
        token = value.strip()
    elif credentials is not None and credentials[1] == "":  # the token as login, empty password
        token = credentials[0]
    if token is None or token not in state.tokens:
        state.count("unauthorized")
        raise SonarError(401)
    if admin and not state.tokens[token]:
        raise SonarError(403, "Insufficient privileges")
    return state


def _int_param(request: Request, name: str, default: int, maximum: int) -> int:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SonarError(400, f"'{raw}' is not an integer value") from None
    if name == "ps" and value > maximum:
        raise SonarError(400, f"'ps' value ({value}) must be less than {maximum}")
    if value < 1:
        raise SonarError(400, f"'{name}' value ({value}) must be greater than 0")
    return value


def page(request: Request, items: list[Any], default_ps: int, max_ps: int) -> tuple[list[Any], dict[str, int]]:
    p = _int_param(request, "p", 1, 10**9)
    ps = _int_param(request, "ps", default_ps, max_ps)
    return items[(p - 1) * ps : p * ps], {"pageIndex": p, "pageSize": ps, "total": len(items)}


router = APIRouter(route_class=ErrorRoute)
control = APIRouter()


def _project(state: SonarState, key: str | None, param: str = "component") -> Project:
    if not key:
        raise SonarError(400, f"The '{param}' parameter is missing")
    project = state.projects.get(key)
    if project is None:
        raise SonarError(
            404, f"Component key '{key}' not found" if param != "projectKey" else f"Project '{key}' not found"
        )
    return project


def _organization(request: Request) -> None:
    org = request.query_params.get("organization")
    if org and org != ORGANIZATION:
        raise SonarError(404, f"No organization for key '{org}'")


def _measures_for(request: Request, project: Project) -> dict[str, str]:
    branch, pr = request.query_params.get("branch"), request.query_params.get("pullRequest")
    if branch and pr:
        raise SonarError(400, "Either branch or pull request can be provided, not both")
    if pr:
        if pr not in project.pull_requests:
            raise SonarError(404, f"Component '{project.key}' of pull request '{pr}' not found")
        return project.pull_requests[pr]
    if branch and branch != "main":
        if branch not in project.branches:
            raise SonarError(404, f"Component '{project.key}' on branch '{branch}' not found")
        return project.branches[branch]
    return project.measures


def gate_status(project: Project, measures: dict[str, str] | None = None) -> tuple[str, list[dict[str, Any]]]:
    if project.gate is None:
        return "NONE", []
    measures = project.measures if measures is None else measures
    conditions = []
    for metric, comparator, threshold in project.gate:
        actual = measures.get(metric)
        if actual is None:
            continue
        bad = float(actual) > float(threshold) if comparator == "GT" else float(actual) < float(threshold)
        conditions.append(
            {
                "status": "ERROR" if bad else "OK",
                "metricKey": metric,
                "comparator": comparator,
                "errorThreshold": threshold,
                "actualValue": actual,
            }
        )
    return ("ERROR" if any(c["status"] == "ERROR" for c in conditions) else "OK"), conditions


def measures_with_gate(project: Project, measures: dict[str, str]) -> dict[str, str]:
    status, _ = gate_status(project, measures)
    return {**measures, "alert_status": status} if status != "NONE" else dict(measures)


def metric_json(key: str) -> dict[str, Any]:
    name, kind, domain, higher, best = METRICS[key]
    out: dict[str, Any] = {
        "key": key,
        "name": name,
        "description": name,
        "domain": domain,
        "type": kind,
        "higherValuesAreBetter": higher,
        "qualitative": kind != "INT" or best is not None,
        "hidden": False,
    }
    if best is not None:
        out["bestValue"] = best
    if kind in ("PERCENT", "FLOAT"):
        out["decimalScale"] = 1
    return out


def _metric_keys(raw: str | None, param: str) -> list[str]:
    if not raw:
        raise SonarError(400, f"The '{param}' parameter is missing")
    keys = [k.strip() for k in raw.split(",") if k.strip()]
    unknown = [k for k in keys if k not in METRICS]
    if unknown:
        raise SonarError(404, f"The following metric keys are not found: {', '.join(unknown)}")
    return keys


# -- routes ----------------------------------------------------------------------------------------
@router.get("/api/system/status")
async def system_status(request: Request) -> dict[str, Any]:
    state = sonar_state(request)
    return {"id": "sandbox-0000", "version": VERSION, "status": state.status}


@router.get("/api/server/version")
async def server_version() -> Response:
    return PlainTextResponse(VERSION)


@router.get("/api/authentication/validate")
async def validate(request: Request) -> dict[str, bool]:
    try:
        authenticate(request)
    except SonarError:
        return {"valid": False}
    return {"valid": True}


@router.get("/api/measures/component")
async def measures_component(request: Request) -> Response:
    state = authenticate(request)
    q = request.query_params
    project = _project(state, q.get("component"))
    keys = _metric_keys(q.get("metricKeys"), "metricKeys")
    values = measures_with_gate(project, _measures_for(request, project))
    measures = []
    for key in keys:
        value = values.get(key)
        if value is None:
            continue  # no value: omitted, not null
        best = METRICS[key][4]
        entry: dict[str, Any] = {"metric": key}
        if key.startswith("new_"):
            entry["period"] = {"index": 1, "value": value, **({"bestValue": value == best} if best is not None else {})}
        else:
            entry["value"] = value
            if best is not None:
                entry["bestValue"] = float(value) == float(best) if METRICS[key][1] != "LEVEL" else False
        measures.append(entry)
    component: dict[str, Any] = {"key": project.key, "name": project.name, "qualifier": "TRK", "measures": measures}
    if q.get("branch"):
        component["branch"] = q["branch"]
    if q.get("pullRequest"):
        component["pullRequest"] = q["pullRequest"]
    body: dict[str, Any] = {"component": component}
    extra = {f.strip() for f in (q.get("additionalFields") or "").split(",") if f.strip()}
    if extra - {"metrics", "period", "periods"}:
        raise SonarError(
            400, f"Value of parameter 'additionalFields' ({','.join(sorted(extra))}) must be one of: [metrics, period]"
        )
    if "metrics" in extra:
        body["metrics"] = [metric_json(k) for k in keys]
    if extra & {"period", "periods"} and project.analyses:
        body["period"] = {
            "mode": "PREVIOUS_VERSION",
            "date": sonar_date(project.analyses[-6].date if len(project.analyses) > 5 else project.analyses[0].date),
            "parameter": project.analyses[-1].version,
        }
    state.count("measures_component")
    return JSONResponse(body)


def _date_param(raw: str | None, name: str, end_of_day: bool = False) -> float | None:
    if not raw:
        return None
    try:
        if len(raw) == 10:
            d = datetime.fromisoformat(raw).replace(tzinfo=UTC)
            return d.timestamp() + (DAY - 0.001 if end_of_day else 0)
        text = raw.replace("Z", "+00:00")
        if len(text) > 5 and text[-5] in "+-" and text[-3] != ":":
            text = text[:-2] + ":" + text[-2:]  # +0200 -> +02:00
        d = datetime.fromisoformat(text)
        return (d if d.tzinfo else d.replace(tzinfo=UTC)).timestamp()
    except ValueError:
        raise SonarError(400, f"'{raw}' cannot be parsed as either a date or date+time") from None


@router.get("/api/measures/search_history")
async def search_history(request: Request) -> Response:
    state = authenticate(request)
    q = request.query_params
    project = _project(state, q.get("component"))
    if "metricKeys" in q and "metrics" not in q:
        raise SonarError(400, "The 'metrics' parameter is missing")
    keys = [k.strip() for k in (q.get("metrics") or "").split(",") if k.strip()]
    if not keys:
        raise SonarError(400, "The 'metrics' parameter is missing")
    unknown = [k for k in keys if k not in METRICS]
    if unknown:
        raise SonarError(404, f"Metrics {', '.join(unknown)} are not found")
    if q.get("branch") or q.get("pullRequest"):
        _measures_for(request, project)
    lo = _date_param(q.get("from"), "from")
    hi = _date_param(q.get("to"), "to", end_of_day=True)
    analyses = [a for a in project.analyses if (lo is None or a.date >= lo) and (hi is None or a.date <= hi)]
    chunk, paging = page(request, analyses, 100, 1000)
    measures = []
    for key in keys:
        history = []
        for a in chunk:
            entry: dict[str, Any] = {"date": sonar_date(a.date)}
            value = measures_with_gate(project, a.values).get(key) if key == "alert_status" else a.values.get(key)
            if value is not None:
                entry["value"] = value
            history.append(entry)
        measures.append({"metric": key, "history": history})
    state.count("search_history")
    return JSONResponse({"paging": paging, "measures": measures})


@router.get("/api/qualitygates/project_status")
async def project_status(request: Request) -> Response:
    state = authenticate(request)
    q = request.query_params
    given = [k for k in ("analysisId", "projectId", "projectKey") if q.get(k)]
    if len(given) != 1:
        raise SonarError(400, "Either 'analysisId', 'projectId' or 'projectKey' must be provided")
    if q.get("projectKey"):
        project = _project(state, q["projectKey"], "projectKey")
        measures = _measures_for(request, project)
    elif q.get("projectId"):
        project = next((p for p in state.projects.values() if f"AY{p.key}" == q["projectId"]), None)  # type: ignore[assignment]
        if project is None:
            raise SonarError(404, f"Project '{q['projectId']}' not found")
        measures = project.measures
    else:
        found = next(((p, a) for p in state.projects.values() for a in p.analyses if a.key == q["analysisId"]), None)
        if found is None:
            raise SonarError(404, f"Analysis with id '{q['analysisId']}' is not found")
        project, analysis = found
        measures = {**analysis.values, **{k: v for k, v in project.measures.items() if k.startswith("new_")}}
    status, conditions = gate_status(project, measures)
    keys = {m for m, _, _ in project.gate or []}
    body: dict[str, Any] = {
        "status": status,
        "ignoredConditions": False,
        "caycStatus": "compliant" if keys == {m for m, _, _ in SONAR_WAY} else "non-compliant",
        "conditions": conditions,
    }
    if project.analyses:
        body["period"] = {
            "mode": "PREVIOUS_VERSION",
            "date": sonar_date(project.analyses[max(0, len(project.analyses) - 6)].date),
            "parameter": project.analyses[-1].version,
        }
    state.count("project_status")
    return JSONResponse({"projectStatus": body})


def _component_json(p: Project) -> dict[str, Any]:
    out: dict[str, Any] = {
        "key": p.key,
        "name": p.name,
        "qualifier": "TRK",
        "visibility": p.visibility,
        "managed": False,
        "organization": ORGANIZATION,
    }
    if p.last_analysis is not None:
        out["lastAnalysisDate"] = sonar_date(p.last_analysis)
        out["revision"] = p.analyses[-1].key.lower()
    return out


@router.get("/api/projects/search")
async def projects_search(request: Request) -> Response:
    state = authenticate(request, admin=True)
    _organization(request)
    q = request.query_params
    items = sorted(state.projects.values(), key=lambda p: p.name.lower())
    if q.get("q"):
        needle = q["q"].lower()
        items = [p for p in items if needle in p.key.lower() or needle in p.name.lower()]
    if q.get("projects"):
        wanted = set(q["projects"].split(","))
        items = [p for p in items if p.key in wanted]
    if q.get("analyzedBefore"):
        before = _date_param(q["analyzedBefore"], "analyzedBefore")
        items = [p for p in items if p.last_analysis is not None and p.last_analysis < (before or 0)]
    chunk, paging = page(request, items, 100, 500)
    return JSONResponse({"paging": paging, "components": [_component_json(p) for p in chunk]})


@router.get("/api/components/search")
async def components_search(request: Request) -> Response:
    state = authenticate(request)
    _organization(request)
    q = request.query_params
    items = sorted(state.projects.values(), key=lambda p: p.name.lower())
    if q.get("q"):
        items = [p for p in items if q["q"].lower() in p.key.lower() or q["q"].lower() in p.name.lower()]
    chunk, paging = page(request, items, 100, 500)
    return JSONResponse(
        {
            "paging": paging,
            "components": [{"key": p.key, "name": p.name, "qualifier": "TRK", "project": p.key} for p in chunk],
        }
    )


@router.get("/api/project_analyses/search")
async def analyses_search(request: Request) -> Response:
    state = authenticate(request)
    q = request.query_params
    project = _project(state, q.get("project"), "project")
    items = list(reversed(project.analyses))  # newest first
    chunk, paging = page(request, items, 100, 500)
    return JSONResponse(
        {
            "paging": paging,
            "analyses": [
                {"key": a.key, "date": sonar_date(a.date), "projectVersion": a.version, "events": []} for a in chunk
            ],
        }
    )


@router.get("/api/metrics/search")
async def metrics_search(request: Request) -> Response:
    authenticate(request)
    chunk, paging = page(request, sorted(METRICS), 100, 500)
    return JSONResponse(
        {
            "metrics": [metric_json(k) for k in chunk],
            "total": paging["total"],
            "p": paging["pageIndex"],
            "ps": paging["pageSize"],
        }
    )


# -- controls (/_sandbox/sonarqube) ----------------------------------------------------------------
class MeasuresBody(BaseModel):
    measures: dict[str, str | float | int | None]  # None removes the measure
    branch: str | None = None
    pull_request: str | None = None
    analysis: bool = False  # also record a new analysis (now) with the resulting values
    derive: bool = True  # recompute debt ratio / maintainability rating / software_quality_* ratings


class ProjectBody(BaseModel):
    key: str
    name: str | None = None
    measures: dict[str, str | float | int] = {}
    gate: bool = True


class GateBody(BaseModel):
    conditions: list[tuple[str, str, str]] | None  # [metric, "GT"|"LT", threshold]; None: no gate


class TokensBody(BaseModel):
    tokens: dict[str, bool]  # token -> administrator


class StatusBody(BaseModel):
    status: str  # UP | STARTING | DOWN | RESTARTING | DB_MIGRATION_NEEDED | DB_MIGRATION_RUNNING


def _control_project(request: Request, key: str) -> Project:
    project = sonar_state(request).projects.get(key)
    if project is None:
        raise HTTPException(404, f"unknown project {key!r}")
    return project


@control.post("/projects/{key}/measures")
def set_measures(request: Request, key: str, body: MeasuresBody) -> dict[str, Any]:
    project = _control_project(request, key)
    unknown = [m for m in body.measures if m not in METRICS]
    if unknown:
        raise HTTPException(400, f"unknown metrics {unknown}")
    if body.pull_request is not None:
        target = project.pull_requests.setdefault(body.pull_request, {})
    elif body.branch not in (None, "main"):
        target = project.branches.setdefault(str(body.branch), dict(project.measures))
    else:
        target = project.measures
    for metric, value in body.measures.items():
        if value is None:
            target.pop(metric, None)
        else:
            target[metric] = format_measure(metric, value)
    if body.derive:
        derive(target)
    if body.analysis and target is project.measures:
        state = sonar_state(request)
        n = len(project.analyses)
        version = project.analyses[-1].version if project.analyses else "1.0.0"
        values = {k: v for k, v in target.items() if not k.startswith("new_")}
        project.analyses.append(Analysis(f"AX{project.key[-3:].upper()}{n:04d}", state.now(), version, values))
    status, _ = gate_status(project)
    return {"key": key, "measures": measures_with_gate(project, project.measures), "gate": status}


@control.post("/projects")
def add_project(request: Request, body: ProjectBody) -> dict[str, Any]:
    state = sonar_state(request)
    measures = {k: format_measure(k, v) for k, v in body.measures.items()}
    derive(measures)
    project = Project(body.key, body.name or body.key, measures, list(SONAR_WAY) if body.gate else None)
    state.projects[body.key] = project
    return _component_json(project)


@control.post("/projects/{key}/gate")
def set_gate(request: Request, key: str, body: GateBody) -> dict[str, Any]:
    project = _control_project(request, key)
    project.gate = [tuple(c) for c in body.conditions] if body.conditions is not None else None  # type: ignore[misc]
    status, conditions = gate_status(project)
    return {"status": status, "conditions": conditions}


@control.put("/tokens")
def set_tokens(request: Request, body: TokensBody) -> dict[str, Any]:
    sonar_state(request).tokens = dict(body.tokens)
    return {"tokens": body.tokens}


@control.post("/status")
def set_status(request: Request, body: StatusBody) -> dict[str, Any]:
    sonar_state(request).status = body.status
    return {"status": body.status}


@control.get("/counts")
def counts(request: Request) -> dict[str, int]:
    return dict(sonar_state(request).counts)
