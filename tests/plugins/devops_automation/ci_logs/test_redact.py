"""Redaction: every planted secret disappears, no look-alike is damaged, real logs are left alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from devops_automation.ci_logs.excerpt import excerpt
from devops_automation.ci_logs.redact import redact, redact_lines, redact_obj, shannon_entropy

from .secrets_corpus import LOOKALIKES, PLANTED

DATASET = Path(__file__).resolve().parents[4] / ".." / "shared" / "datasets" / "ci-breakages" / "cases"


@pytest.mark.parametrize(("kind", "text", "secrets"), PLANTED, ids=[f"{i}-{p[0]}" for i, p in enumerate(PLANTED)])
def test_planted_secret_is_removed(kind: str, text: str, secrets: list[str]) -> None:
    result = redact(text)
    assert secrets  # each case names what must disappear
    for secret in secrets:
        assert secret not in result.text
    assert "[REDACTED:" in result.text
    assert result.total >= 1


def test_every_planted_secret_removed_in_one_document() -> None:
    """All planted secrets mixed into one text (as a log would hold them): 100 % removed."""
    doc = "\n".join(f"line {i}: {text}" for i, (_, text, _) in enumerate(PLANTED))
    out = redact(doc).text
    leaked = [s for _, _, secrets in PLANTED for s in secrets if s in out]
    assert leaked == []


def test_kinds_are_reported() -> None:
    kinds = {k for _, text, _ in PLANTED for k in redact(text).counts}
    for expected in (
        "private_key",
        "aws_access_key",
        "github_token",
        "gitlab_token",
        "slack_token",
        "openai_key",
        "jwt",
        "authorization",
        "url_password",
        "secret",
        "high_entropy",
    ):
        assert expected in kinds


@pytest.mark.parametrize("text", LOOKALIKES)
def test_lookalike_survives(text: str) -> None:
    assert redact(text).text == text


def test_header_and_scheme_are_kept() -> None:
    out = redact("> Authorization: Bearer abcdefghijklmnopqrstuvwxyz0123456789").text
    assert out == "> Authorization: Bearer [REDACTED:authorization]"
    assert (
        redact("https://deploy:pa55w0rdXYZ@git.example.com/x.git").text
        == "https://deploy:[REDACTED:url_password]@git.example.com/x.git"
    )


def test_redaction_is_idempotent() -> None:
    doc = "\n".join(text for _, text, _ in PLANTED)
    once = redact(doc).text
    twice = redact(once)
    assert twice.text == once
    assert twice.total == 0


def test_pem_body_without_begin_line() -> None:
    """An excerpt can keep a middle line of a key without its BEGIN line (numbered as in an excerpt)."""
    body_line = PLANTED[0][2][3]
    out = redact(f"17: {body_line}").text
    assert body_line not in out
    assert out.startswith("17: ")


def test_redact_lines_and_objects() -> None:
    secret = PLANTED[8][2][0]  # a GitHub token
    lines, counts = redact_lines(["ok", f"token {secret}"])
    assert lines[0] == "ok"
    assert secret not in lines[1]
    assert sum(counts.values()) == 1
    obj = redact_obj({"a": [f"GITHUB_TOKEN={secret}", 3], "b": ("x", {"c": f"Bearer {secret}"})})
    assert secret not in repr(obj)
    assert obj["a"][1] == 3  # type: ignore[index]


def test_entropy() -> None:
    assert shannon_entropy("aaaa") == 0
    assert shannon_entropy("abcd") == 2


@pytest.mark.skipif(not DATASET.is_dir(), reason="ci-breakages dataset not present")
def test_real_logs_have_no_false_positives() -> None:
    """~12 MB of real build logs contain no credentials: nothing may be redacted in them."""
    hits = []
    for path in sorted(DATASET.glob("*/*.log")):
        r = redact(path.read_bytes().decode("utf-8", errors="replace"))
        if r.counts:
            hits.append((path.parent.name, r.counts))
    assert hits == []


def test_excerpt_text_is_redacted() -> None:
    """Secrets printed on error lines never reach the excerpt's text, line texts or signals."""
    secrets = [s for _, _, ss in PLANTED[4:20] for s in ss]
    log = "\n".join(["step 1", *[f"ERROR: deploy failed: {text}" for _, text, _ in PLANTED[4:20]], "Finished: FAILURE"])
    ex = excerpt(log.encode(), budget=20000)
    blob = ex.text + repr(ex.line_text) + repr([s.text for s in ex.signals])
    assert [s for s in secrets if s in blob] == []
    assert ex.redactions
    assert sum(ex.redactions.values()) >= len(PLANTED[4:20])


def test_private_key_block_in_a_log_is_never_shown() -> None:
    """Line-by-line redaction cannot recognise the short last line of a key: the excerpt tracks the
    BEGIN … END block while streaming and hides every line in it."""
    kind, block, body = PLANTED[0]
    assert kind == "private_key"
    assert len(body) >= 3  # the key's body lines
    rows = [f"[INFO] step {i}" for i in range(30)] + ["ERROR: writing deploy key failed, key was:"] + block.splitlines()
    rows += ["ERROR: deploy failed", "Finished: FAILURE"]
    ex = excerpt("\n".join(rows).encode(), budget=20000)
    assert set(range(31, 31 + len(body) + 3)) <= set(ex.lines)  # the block is kept (it sits among errors) ...
    for secret in body:
        assert secret not in ex.text  # ... but never shown
    assert ex.text.count("[REDACTED:private_key]") >= len(body)


# ---- issue 15: the leak classes, each with the exact text that must come out ---------------------
_K = "Xy8Kq2Lw9Vb4Ns7T"  # 16 generated-looking characters, assembled into longer values below
_B64KEY = "q3Zx8Kp2Lw9Vb4Ns7Tq1Yr6Uo0Ie5Wa3Sd8Fg2Hj7Kl4Zx9Cv1Bn6Mq3Wr8Te5Yu0Io2Pa4Sd7Fg9Hj1Kl=="
LEAK_CLASSES = [
    (
        "azure_connection_string",
        f"DefaultEndpointsProtocol=https;AccountName=ci;AccountKey={_B64KEY};EndpointSuffix=core.windows.net",
        "DefaultEndpointsProtocol=https;AccountName=ci;AccountKey=[REDACTED:secret];EndpointSuffix=core.windows.net",
    ),
    ("azure_account_key", f"AZURE_STORAGE_ACCOUNT_KEY={_B64KEY}", "AZURE_STORAGE_ACCOUNT_KEY=[REDACTED:secret]"),
    (
        "sas_url",
        f"https://ci.blob.core.windows.net/c/b.zip?sv=2022-11-02&sp=rl&sig={_K}{_K}%3D",
        "https://ci.blob.core.windows.net/c/b.zip?sv=2022-11-02&sp=rl&sig=[REDACTED:secret]",
    ),
    ("plain_key_suffix", f"APP_COSMOSDB_KEY={_B64KEY}", "APP_COSMOSDB_KEY=[REDACTED:secret]"),
    ("iam_key", f"DEPLOY_IAM_KEY={_K}{_K}", "DEPLOY_IAM_KEY=[REDACTED:secret]"),
    ("app_key", f"DATADOG_APP_KEY={'0f3a' * 10}", "DATADOG_APP_KEY=[REDACTED:secret]"),
    (
        "dotted_token_after_password",
        "[DEBUG]   (f) password = pa" + f"t.{_K}Ab3dEf.{_K}Gh1jKl2m.{_K}Zx9c",
        "[DEBUG]   (f) password = [REDACTED:harness_token]",
    ),
    (
        "mapbox",
        "MAPBOX_TOKEN=s" + "k.eyJ1IjoiY2ktYm90IiwiYSI6ImNsYWJjZGVmZ2hpams0NTYifQ." + _K + "Ab3dEf",
        "MAPBOX_TOKEN=[REDACTED:mapbox_token]",
    ),
    (
        "discord",
        "token = MTk4NjIyNDgzNDcxOTI1MjQ4." + "Cl2FMQ." + _K + _K + "ZnCjm",
        "token = [REDACTED:discord_token]",
    ),
    (
        "curl_u",
        f"+ curl -u deploy:{_K} https://a.example.com",
        "+ curl -u deploy:[REDACTED:secret] https://a.example.com",
    ),
    (
        "curl_user_quoted",
        f'+ curl --user "deploy:{_K}" https://a.example.com',
        '+ curl --user "deploy:[REDACTED:secret]" https://a.example.com',
    ),
    (
        "docker_login_dash",
        f"+ docker login -u ci -p -{_K} registry.example.com",
        "+ docker login -u ci -p [REDACTED:secret] registry.example.com",
    ),
    (
        "facebook_app_token",
        f"GET https://graph.facebook.com/me?access_token=123456789012345|{_K}{_K}",
        "GET https://graph.facebook.com/me?access_token=[REDACTED:facebook_token]",
    ),
    (
        "docker_config_auth",
        '{"auths": {"registry.example.com": {"auth": "Y2ktYm90Olh5OEtxMkx3OVZiNE5zN1Q="}}}',
        '{"auths": {"registry.example.com": {"auth": "[REDACTED:secret]"}}}',
    ),
    ("unknown_scheme", f"> Authorization: Api-Token {_K}{_K}", "> Authorization: Api-Token [REDACTED:authorization]"),
    (
        "fly_scheme",
        f"> Authorization: FlyV1 fm2_{_K}{_K}{_K},fm2_{_K}{_K}",
        "> Authorization: FlyV1 [REDACTED:authorization]",
    ),
    ("gitlab_routable", "gl" + f"pat-{_K}{_K}Ab3dEf.01.abcdefghi", "[REDACTED:gitlab_token]"),
    (
        "long_url_password",
        f"https://ci:{_K * 20}@git.example.com/app.git",
        "https://ci:[REDACTED:url_password]@git.example.com/app.git",
    ),
    ("docker_hub_bare", "dckr" + f"_pat_{_K}Ab3dEf6hIj9", "[REDACTED:docker_token]"),
    ("huggingface_bare", "h" + "f_" + "kXqZvBtrWplmNcDfGhJkLqRsTvWxYzMnBv", "[REDACTED:huggingface_token]"),
    ("sendgrid_bare", "S" + f"G.{_K}Ab3dEf.{_K}{_K}Ab3dEf6hIj9", "[REDACTED:sendgrid_key]"),
    ("shopify_bare", "shp" + f"at_{'0f3a' * 8}", "[REDACTED:shopify_token]"),
    ("digitalocean_bare", "do" + f"p_v1_{'0f3a' * 16}", "[REDACTED:digitalocean_token]"),
    ("heroku_bare", "HR" + f"KU-AA{_K}{_K}{_K}Ab3dEf6hIj", "[REDACTED:heroku_key]"),
    ("vault_bare", "hv" + f"s.{_K * 6}", "[REDACTED:vault_token]"),
    ("twilio_bare", "S" + f"K{'0f3aB9c2' * 4}", "[REDACTED:twilio_key]"),
    ("azure_ad_bare", "Ab.8" + "Q~" + f"{_K}{_K}x.", "[REDACTED:azure_client_secret]"),
    ("slack_webhook_http", "http://hooks.slack.com/services/" + f"T0A1B2C3D/B0A1B2C3D4/{_K}Ab3dEf6h", None),
    ("npm_bare", "np" + f"m_{_K}{_K}Ab3d", "[REDACTED:npm_token]"),
    ("pypi_bare", "py" + f"pi-AgEIcHlwaS5vcmc{_K * 4}", "[REDACTED:pypi_token]"),
    ("stripe_live", "s" + f"k_live_{_K}Ab3d", "[REDACTED:stripe_key]"),
    ("stripe_restricted", "r" + f"k_live_{_K}Ab3d", "[REDACTED:stripe_key]"),
    ("telegram_bare", "1234567890:A" + f"{_K}{_K}Ab", "[REDACTED:telegram_token]"),
    ("gcp_bare", "AI" + f"za{_K}{_K}Ab3", "[REDACTED:google_api_key]"),
    ("datadog_pat_bare", "dd" + f"pat_{_K}{_K}", "[REDACTED:datadog_token]"),
]


@pytest.mark.parametrize(("name", "text", "expected"), LEAK_CLASSES, ids=[c[0] for c in LEAK_CLASSES])
def test_issue_leak_class(name: str, text: str, expected: str | None) -> None:
    out = redact(text).text
    if expected is None:  # the whole URL path holds the secret: nothing of it may survive
        assert _K not in out and "[REDACTED:" in out
    else:
        assert out == expected


# Look-alikes the issue names: they were damaged before, they must come out as they went in.
ISSUE_LOOKALIKES = [
    "auth-token-service: There are test failures",
    "AWS Secrets Manager: access denied for role deploy",
    "[INFO] +- io.jsonwebtoken:jjwt-api:jar:0.11.5:compile",
    "> Task :auth-token-service:compileJava",
    "    secrets: inherit",
    "  GITHUB_TOKEN:\n  NPM_CONFIG_REGISTRY: https://registry.npmjs.org/",
    "VGhlIGJ1aWxkIGZhaWxlZCBiZWNhdXNlIGEgZGVwZW5kZW5jeSBjb3VsZCBub3QgYmUgcmVzb2x2ZWQ=",
    "VGhlIGJ1aWxkIGZhaWxlZCBiZWNhdXNlIGEgZGVwZW5kZW5jeSBjb3VsZCBub3QgYmUgcmVzb2x2ZWQgZnJvbSB0aGU=",
]


@pytest.mark.parametrize("text", ISSUE_LOOKALIKES)
def test_issue_lookalike_survives(text: str) -> None:
    assert redact(text).text == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # the value only: the prose after it stays
        ("password: Summer2024! for the deploy user", "password: [REDACTED:secret] for the deploy user"),
        # never across a line end: an empty value leaves the next line's key alone
        ("API_TOKEN:\n  REGION: eu-west-1", "API_TOKEN:\n  REGION: eu-west-1"),
        ("API_TOKEN=\nREGION=eu-west-1", "API_TOKEN=\nREGION=eu-west-1"),
        # a prose word after a secret word is not a value
        ("token expired for user deploy", "token expired for user deploy"),
        ("the password is wrong", "the password is wrong"),
        # a Java/Kotlin qualified name or a method call is not a value
        ("token = frames.nextToken();", "token = frames.nextToken();"),
        ("password = config.getPassword()", "password = config.getPassword()"),
        # hex after a clear secret name is a secret; after a cache key it is a digest
        (f"SECRET_KEY_BASE={'0f3a' * 16}", "SECRET_KEY_BASE=[REDACTED:secret]"),
        (f"CACHE_KEY=v1-deps-linux-{'0f3a' * 8}", f"CACHE_KEY=v1-deps-linux-{'0f3a' * 8}"),
    ],
)
def test_keyword_rules_redact_values_only(text: str, expected: str) -> None:
    assert redact(text).text == expected
