"""ApiHook (through DevLakeHook) against the sandbox: retries, Retry-After, errors, headers."""

from __future__ import annotations

import email.utils
import json
import time

import pytest
import requests

from devops_automation.hooks.api import ApiError, NotJsonError, parse_retry_after
from devops_automation.hooks.devlake import DevLakeHook, DevLakeMigrationPending


@pytest.fixture
def hook(sandbox, monkeypatch):
    """A DevLakeHook on the sandbox whose retry waits are recorded instead of slept."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_DEVLAKE_DEFAULT",
        json.dumps(
            {
                "conn_type": "http",
                "host": f"{sandbox.base_url}/devlake",
                "extra": {"timeout": 2, "max_retries": 3, "auth_type": "x-must-not-be-a-header"},
            }
        ),
    )
    h = DevLakeHook()
    h.waits = []
    h.sleep = h.waits.append
    return h


def test_get_is_retried_on_5xx_then_succeeds(hook, sandbox) -> None:
    sandbox.fault(system="devlake", path="^/version$", status=502, times=2)
    assert hook.version()
    assert hook.request_count == 3
    assert len(hook.waits) == 2


def test_retry_after_seconds_is_honoured(hook, sandbox) -> None:
    sandbox.fault(system="devlake", path="^/version$", status=429, retry_after=7, times=1)
    hook.version()
    assert hook.waits == [7.0]


def test_retry_after_http_date() -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= parse_retry_after(when) <= 31
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("garbage") is None
    assert parse_retry_after(None) is None


def test_a_wait_longer_than_the_cap_fails_at_once(hook, sandbox) -> None:
    sandbox.fault(system="devlake", path="^/version$", status=429, retry_after=3600, times=1)
    with pytest.raises(ApiError) as exc:
        hook.version()
    assert exc.value.status == 429
    assert exc.value.retry_after == 3600
    assert hook.waits == []


def test_post_is_not_retried_after_a_server_error_but_is_after_429(hook, sandbox) -> None:
    sandbox.fault(system="devlake", method="POST", path="^/projects$", status=500, times=1)
    with pytest.raises(ApiError, match="500"):
        hook.create_project("p-500")
    assert hook.request_count == 1
    sandbox.fault(system="devlake", method="POST", path="^/projects$", status=429, retry_after=0, times=1)
    assert hook.create_project("p-429")["name"] == "p-429"
    assert sandbox.control("devlake", "GET", "/counts")["projects"] == 1


def test_errors_carry_devlakes_own_message(hook) -> None:
    hook.create_project("dup")
    with pytest.raises(ApiError) as exc:
        hook.create_project("dup")
    assert exc.value.status == 400
    assert "already exists" in exc.value.message
    assert "DevLake POST /projects -> 400" in str(exc.value)


def test_wrong_api_key_is_not_retried(sandbox, monkeypatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_DEVLAKE_DEFAULT",
        json.dumps({"conn_type": "http", "host": f"{sandbox.base_url}/devlake", "password": "wrong-key"}),
    )
    hook = DevLakeHook()
    hook.sleep = lambda s: pytest.fail("must not wait for a retry")
    with pytest.raises(ApiError) as exc:
        hook.plugins()
    assert exc.value.status in (401, 403)
    assert hook.request_count == 1
    assert "wrong-key" not in str(exc.value)
    assert sandbox.requests(system="devlake")[-1]["path"].startswith("/rest/")


def test_html_answer_is_a_clear_error(hook, sandbox) -> None:
    sandbox.control("devlake", "POST", "/settings", json={"html_mode": True})
    with pytest.raises(NotJsonError, match="expected JSON but got 'text/html"):
        hook.plugins()
    assert hook.request_count == 1


def test_pending_migration_is_not_retried(hook, sandbox) -> None:
    sandbox.control("devlake", "POST", "/settings", json={"migration_pending": True})
    with pytest.raises(DevLakeMigrationPending, match="awaits a database migration"):
        hook.plugins()
    assert hook.request_count == 1


def test_timeouts_are_retried_for_reads(hook, sandbox) -> None:
    sandbox.fault(system="devlake", path="^/version$", status=None, delay_ms=2500, times=1)
    assert hook.version()
    assert hook.request_count == 2


def test_connection_extras_never_become_headers(hook, sandbox) -> None:
    hook.plugins()
    headers = {k.lower() for k in sandbox.requests(system="devlake")[-1]["headers"]}
    assert not headers & {"auth_type", "timeout", "max_retries"}


def test_plugin_without_connection_api_is_none(hook, sandbox) -> None:
    import requests

    assert hook.connections("dora") is None
    github = hook.connections("github")
    assert github  # the sandbox seeds GitHub connections
    assert github == requests.get(f"{sandbox.base_url}/devlake/plugins/github/connections", timeout=10).json()


def test_connection_refused_is_retried_then_raised(monkeypatch) -> None:
    from include.sandbox.client import free_port

    monkeypatch.setenv(
        "AIRFLOW_CONN_DEVLAKE_DEFAULT",
        json.dumps({"conn_type": "http", "host": f"http://127.0.0.1:{free_port()}", "extra": {"max_retries": 2}}),
    )
    hook = DevLakeHook()
    hook.sleep = lambda s: None
    with pytest.raises(requests.ConnectionError, match="DevLake GET /version"):
        hook.version()
    assert hook.request_count == 3


def test_bitbucket_past_100_repositories_is_completed_by_search(hook, sandbox) -> None:
    (conn,) = hook.connections("bitbucket")
    before = list(hook.remote_scopes("bitbucket", int(conn["id"])))
    workspace = before[0]["id"].split("/")[0]
    in_workspace = sum(1 for e in before if e["id"].startswith(workspace + "/"))
    for i in range(105 - in_workspace):
        sandbox.control(
            "devlake",
            "POST",
            f"/connections/bitbucket/{conn['id']}/remote-repos",
            json={"name": f"extra-repo-{i:03d}", "group": workspace},
        )
    first_page = hook.remote_scope_page("bitbucket", int(conn["id"]), workspace)
    assert len(first_page["children"]) == 100
    assert not first_page.get("nextPageToken")  # DevLake's cap, no token
    after = list(hook.remote_scopes("bitbucket", int(conn["id"])))
    ids = [e["id"] for e in after if e["id"].startswith(workspace + "/")]
    assert len(ids) == len(set(ids)) == 105


def _devlake(sandbox, monkeypatch, **env: str) -> DevLakeHook:
    monkeypatch.setenv(
        "AIRFLOW_CONN_DEVLAKE_DEFAULT",
        json.dumps({"conn_type": "http", "host": f"{sandbox.base_url}/devlake", "extra": {"max_retries": 0}}),
    )
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return DevLakeHook()


def test_proxy_variables_are_read_once_for_the_base_url(sandbox, monkeypatch, tmp_path) -> None:
    from include.sandbox.client import free_port

    dead_proxy = f"http://127.0.0.1:{free_port()}"
    bundle = tmp_path / "ca.pem"
    hook = _devlake(sandbox, monkeypatch, HTTP_PROXY=dead_proxy, REQUESTS_CA_BUNDLE=str(bundle))
    session = hook.session
    assert session.proxies == {"http": dead_proxy}
    assert session.verify == str(bundle)
    assert session.trust_env is False  # requests no longer walks the environment per request
    with pytest.raises(requests.ConnectionError, match="ProxyError"):  # the request did go to the proxy
        hook.version()

    hook = _devlake(sandbox, monkeypatch, HTTP_PROXY=dead_proxy, NO_PROXY="127.0.0.1,localhost")
    assert hook.session.proxies == {}  # the base URL's host is exempt
    assert hook.version()  # straight to the sandbox
    monkeypatch.setenv("NO_PROXY", "")  # read once: a later change does not reach this hook
    assert hook.version()


def test_a_netrc_entry_does_not_replace_the_token_header(sandbox, monkeypatch, tmp_path) -> None:
    """``requests`` lets a ``~/.netrc`` entry for the host override the ``Authorization`` header; the
    hooks read the environment once and leave netrc out."""
    from devops_automation.hooks.github import GitHubHook

    token = "ghp_sandboxtoken000000000000000000000000"  # the sandbox's

    netrc = tmp_path / ".netrc"
    netrc.write_text("machine 127.0.0.1 login someone password netrc-secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.setenv(
        "AIRFLOW_CONN_GITHUB_DEFAULT",
        json.dumps({"conn_type": "github", "host": f"{sandbox.base_url}/github", "password": token}),
    )
    GitHubHook().repository("acme/shop")
    (sent,) = sandbox.requests(system="github")
    authorization = {k.lower(): v for k, v in sent["headers"].items()}.get("authorization", "")
    assert authorization == f"Bearer {token}"
