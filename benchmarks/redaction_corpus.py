"""The generated corpus of the redaction benchmark (``benchmarks/redaction.py``) and its tests.

Every secret is made here from a format's documented facts (prefix, alphabet, length) with a seeded
random generator, so the corpus is the same on every run and no real credential is stored. Each
format's secret is placed in ordinary CI-log contexts:

* keyword / structure contexts (goal: recall >= 0.98): ``env`` (a shell-trace export), ``yaml``,
  ``json``, ``header`` (an HTTP header, any scheme), ``url`` (query parameter or user info),
  ``cli`` (curl -u, docker login -p, -D/-P properties, --token flags, mysql -p …), ``stack`` (an
  exception message naming the credential) and ``maven_debug`` (``[DEBUG]   (f) password = …``);
* self-identifying contexts, only for formats whose prefix names them (goal: >= 0.95): ``bare`` (alone
  on a log line), ``argument`` (a positional argument in a shell trace) and ``message`` (inside an
  error message, no keyword anywhere).

Look-alikes (:func:`lookalikes`) are lines that must come out unchanged: commit SHAs, UUIDs, digests,
integrity hashes, base64 of words, Java class names, Maven coordinates, Gradle task paths, file paths,
versions, prose after secret-named services, empty YAML values, placeholders, settings such as
``max_tokens``, public keys and certificates, URLs and generated ids.

A case is caught when no 8-character piece of its secret survives redaction.
"""

from __future__ import annotations

import base64
import json
import random
import re
import string
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

SEED = 20260515

LOWER = string.ascii_lowercase
UPPER = string.ascii_uppercase
DIGITS = string.digits
ALNUM = LOWER + UPPER + DIGITS
LOWER_NUM = LOWER + DIGITS
UPPER_NUM = UPPER + DIGITS
HEX = "0123456789abcdef"
B64 = ALNUM + "+/"
URLSAFE = ALNUM + "-_"
BASE32 = UPPER + "234567"
BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l".upper()
PASSWORD = ALNUM + "!#%^*-_+=.~"

KEYWORD_CONTEXTS = ("env", "yaml", "json", "header", "url", "cli", "stack", "maven_debug")
SELF_CONTEXTS = ("bare", "argument", "message")


@dataclass(frozen=True)
class Format:
    """A credential format: how to make one, and the names it usually goes by."""

    name: str
    make: Callable[[random.Random], str]
    self_identifying: bool
    env: str
    header: str = "Authorization: Bearer {s}"
    kind: str = "token"  # the word an error message uses for it: token, password, api key, secret
    url: str | None = None  # a webhook: the secret is the path of this URL ({s})


@dataclass(frozen=True)
class Case:
    format: str
    context: str
    category: str  # "keyword" (keyword or structure context) or "self" (no keyword nearby)
    text: str
    secrets: tuple[str, ...]  # as they appear in the text (percent-encoded in URLs)


@dataclass(frozen=True)
class LookAlike:
    cls: str
    text: str


def _r(alphabet: str, n: int) -> Callable[[random.Random], str]:
    return lambda rng: "".join(rng.choice(alphabet) for _ in range(n))


def _cat(*parts: str | Callable[[random.Random], str]) -> Callable[[random.Random], str]:
    return lambda rng: "".join(p if isinstance(p, str) else p(rng) for p in parts)


def _uuid(rng: random.Random) -> str:
    h = "".join(rng.choice(HEX) for _ in range(32))
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


def _b64_bytes(n: int, pad: bool = True) -> Callable[[random.Random], str]:
    def make(rng: random.Random) -> str:
        s = base64.b64encode(bytes(rng.randrange(256) for _ in range(n))).decode()
        return s if pad else s.rstrip("=")

    return make


def _b64url_json(obj: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).rstrip(b"=").decode()


def _jwt(rng: random.Random) -> str:
    payload = {"sub": _r(ALNUM, 12)(rng), "iat": 1760000000 + rng.randrange(10**6), "scope": "deploy"}
    return _b64url_json({"alg": "HS256", "typ": "JWT"}) + "." + _b64url_json(payload) + "." + _r(URLSAFE, 43)(rng)


def _discord(rng: random.Random) -> str:
    snowflake = str(rng.randrange(10**17, 10**19))
    head = base64.b64encode(snowflake.encode()).decode().rstrip("=")
    return head + "." + _r(URLSAFE, 6)(rng) + "." + _r(URLSAFE, 38)(rng)


def _mapbox(rng: random.Random) -> str:
    return (
        "sk." + _b64url_json({"u": "ci-" + _r(LOWER, 6)(rng), "a": _r(LOWER_NUM, 25)(rng)}) + "." + _r(URLSAFE, 22)(rng)
    )


def _azure_ad(rng: random.Random) -> str:
    return _r(ALNUM + "_~.", 3)(rng) + rng.choice(DIGITS) + "Q~" + _r(ALNUM + "_~.-", 34)(rng)


def _digits(lo: int, hi: int) -> Callable[[random.Random], str]:
    return lambda rng: str(rng.randrange(10 ** (lo - 1), 10**hi))


# Facts from the vendors' documentation as catalogued by public secret scanners: prefix, alphabet, length.
FORMATS: tuple[Format, ...] = (
    # --- self-identifying: the prefix (or a fixed marker) names the format
    Format("github_pat", _cat("gh", "p_", _r(ALNUM, 36)), True, "GITHUB_TOKEN", "Authorization: token {s}"),
    Format("github_oauth", _cat("gh", "o_", _r(ALNUM, 36)), True, "GH_OAUTH_TOKEN"),
    Format("github_app_user", _cat("gh", "u_", _r(ALNUM, 36)), True, "GH_USER_TOKEN"),
    Format("github_app_installation", _cat("gh", "s_", _r(ALNUM, 36)), True, "GH_INSTALLATION_TOKEN"),
    Format("github_refresh", _cat("gh", "r_", _r(ALNUM, 36)), True, "GH_REFRESH_TOKEN"),
    Format("github_fine_grained", _cat("github", "_pat_", _r(ALNUM, 22), "_", _r(ALNUM, 59)), True, "GH_PAT"),
    Format("gitlab_pat", _cat("gl", "pat-", _r(URLSAFE, 20)), True, "GITLAB_TOKEN", "PRIVATE-TOKEN: {s}"),
    Format(
        "gitlab_pat_routable",
        _cat("gl", "pat-", _r(URLSAFE, 38), ".01.", _r(LOWER_NUM, 9)),
        True,
        "GITLAB_API_TOKEN",
        "PRIVATE-TOKEN: {s}",
    ),
    Format(
        "gitlab_runner_routable",
        _cat("gl", "rt-t1_", _r(URLSAFE, 27), ".", _r(LOWER_NUM, 2), _r(LOWER_NUM, 7)),
        True,
        "CI_RUNNER_TOKEN",
    ),
    Format("gitlab_deploy", _cat("gl", "dt-", _r(URLSAFE, 20)), True, "DEPLOY_TOKEN"),
    Format("gitlab_runner", _cat("gl", "rt-", _r(URLSAFE, 20)), True, "RUNNER_TOKEN"),
    Format(
        "gitlab_cicd_job",
        _cat("gl", "cbt-", _r(ALNUM, 3), "_", _r(URLSAFE, 20)),
        True,
        "CI_JOB_TOKEN",
        "JOB-TOKEN: {s}",
    ),
    Format("gitlab_trigger", _cat("gl", "ptt-", _r(HEX, 40)), True, "TRIGGER_TOKEN"),
    Format("gitlab_runner_registration", _cat("GR13", "48941", _r(URLSAFE, 20)), True, "REGISTRATION_TOKEN"),
    Format("gitlab_feed", _cat("gl", "ft-", _r(URLSAFE, 20)), True, "FEED_TOKEN"),
    Format("gitlab_oauth_secret", _cat("gl", "oas-", _r(URLSAFE, 64)), True, "GITLAB_OAUTH_SECRET", kind="secret"),
    Format("gitlab_agent", _cat("gl", "agent-", _r(URLSAFE, 50)), True, "KAS_AGENT_TOKEN"),
    Format("gitlab_scim", _cat("gl", "soat-", _r(URLSAFE, 20)), True, "SCIM_TOKEN"),
    Format("gitlab_incoming_mail", _cat("gl", "imt-", _r(URLSAFE, 25)), True, "INCOMING_EMAIL_TOKEN"),
    Format("gitlab_feature_flag", _cat("gl", "ffct-", _r(URLSAFE, 20)), True, "UNLEASH_CLIENT_TOKEN"),
    Format(
        "slack_bot",
        _cat("xo", "xb-", _digits(11, 12), "-", _digits(12, 13), "-", _r(ALNUM, 24)),
        True,
        "SLACK_BOT_TOKEN",
    ),
    Format(
        "slack_user",
        _cat("xo", "xp-", _digits(11, 12), "-", _digits(11, 12), "-", _digits(12, 13), "-", _r(HEX, 32)),
        True,
        "SLACK_USER_TOKEN",
    ),
    Format(
        "slack_app",
        _cat("xa", "pp-1-A", _r(UPPER_NUM, 10), "-", _digits(13, 13), "-", _r(HEX, 64)),
        True,
        "SLACK_APP_TOKEN",
    ),
    Format("slack_config", _cat("xo", "xe.xoxp-1-", _r(UPPER_NUM, 163)), True, "SLACK_CONFIG_TOKEN"),
    Format(
        "slack_webhook",
        _cat("T", _r(UPPER_NUM, 8), "/B", _r(UPPER_NUM, 10), "/", _r(ALNUM, 24)),
        True,
        "SLACK_WEBHOOK_URL",
        kind="webhook",
        url="hooks.slack.com/services/{s}",
    ),
    Format(
        "discord_webhook",
        _cat(_digits(18, 19), "/", _r(URLSAFE, 68)),
        True,
        "DISCORD_WEBHOOK_URL",
        kind="webhook",
        url="discord.com/api/webhooks/{s}",
    ),
    Format(
        "teams_webhook",
        _cat("webhookb2/", _uuid, "@", _uuid, "/IncomingWebhook/", _r(HEX, 32), "/", _uuid),
        True,
        "TEAMS_WEBHOOK_URL",
        kind="webhook",
        url="acme.webhook.office.com/{s}",
    ),
    Format(
        "openai_project", _cat("sk", "-proj-", _r(URLSAFE, 58), "T3Blbk", "FJ", _r(URLSAFE, 58)), True, "OPENAI_API_KEY"
    ),
    Format(
        "openai_legacy",
        _cat("sk", "-", _r(ALNUM, 20), "T3Blbk", "FJ", _r(ALNUM, 20)),
        True,
        "OPENAI_KEY",
        kind="api key",
    ),
    Format(
        "anthropic",
        _cat("sk", "-ant-api03-", _r(URLSAFE, 93), "AA"),
        True,
        "ANTHROPIC_API_KEY",
        "x-api-key: {s}",
        kind="api key",
    ),
    Format("huggingface", _cat("h", "f_", _r(LOWER + UPPER, 34)), True, "HF_TOKEN"),
    Format("groq", _cat("gs", "k_", _r(ALNUM, 52)), True, "GROQ_API_KEY", kind="api key"),
    Format("perplexity", _cat("pp", "lx-", _r(ALNUM, 48)), True, "PPLX_API_KEY", kind="api key"),
    Format("aws_access_key_id", _cat("AK", "IA", _r(BASE32, 16)), True, "AWS_ACCESS_KEY_ID", "X-Amz-Access-Key: {s}"),
    Format("aws_sts_key_id", _cat("AS", "IA", _r(BASE32, 16)), True, "AWS_ACCESS_KEY_ID", "X-Amz-Access-Key: {s}"),
    Format("gcp_api_key", _cat("AI", "za", _r(URLSAFE, 35)), True, "GOOGLE_API_KEY", "x-goog-api-key: {s}", "api key"),
    Format("google_oauth_secret", _cat("GOC", "SPX-", _r(URLSAFE, 28)), True, "GOOGLE_CLIENT_SECRET", kind="secret"),
    Format("azure_ad_client_secret", _azure_ad, True, "AZURE_CLIENT_SECRET", kind="client secret"),
    Format("azure_devops_pat", _cat(_r(ALNUM, 76), "AZ", "DO", _r(ALNUM, 4)), True, "AZURE_DEVOPS_EXT_PAT"),
    Format("docker_hub_pat", _cat("dckr", "_pat_", _r(URLSAFE, 27)), True, "DOCKERHUB_TOKEN"),
    Format("npm", _cat("np", "m_", _r(ALNUM, 36)), True, "NPM_TOKEN"),
    Format("pypi", _cat("py", "pi-AgEIcHlwaS5vcmc", _r(URLSAFE, 70)), True, "TWINE_PASSWORD", kind="password"),
    Format("stripe_secret", _cat("sk", "_live_", _r(ALNUM, 24)), True, "STRIPE_SECRET_KEY", kind="api key"),
    Format("stripe_restricted", _cat("rk", "_live_", _r(ALNUM, 24)), True, "STRIPE_RESTRICTED_KEY", kind="api key"),
    Format("stripe_webhook", _cat("wh", "sec_", _r(ALNUM, 32)), True, "STRIPE_WEBHOOK_SECRET", kind="secret"),
    Format(
        "sendgrid", _cat("S", "G.", _r(URLSAFE, 22), ".", _r(URLSAFE, 43)), True, "SENDGRID_API_KEY", kind="api key"
    ),
    Format(
        "shopify_access", _cat("shp", "at_", _r(HEX, 32)), True, "SHOPIFY_ACCESS_TOKEN", "X-Shopify-Access-Token: {s}"
    ),
    Format("shopify_shared_secret", _cat("shp", "ss_", _r(HEX, 32)), True, "SHOPIFY_API_SECRET", kind="secret"),
    Format("digitalocean", _cat("do", "p_v1_", _r(HEX, 64)), True, "DIGITALOCEAN_ACCESS_TOKEN"),
    Format("heroku", _cat("HR", "KU-AA", _r(URLSAFE, 58)), True, "HEROKU_API_KEY", kind="api key"),
    Format("vault_service", _cat("hv", "s.", _r(URLSAFE, 95)), True, "VAULT_TOKEN", "X-Vault-Token: {s}"),
    Format("vault_batch", _cat("hv", "b.", _r(URLSAFE, 140)), True, "VAULT_BATCH_TOKEN", "X-Vault-Token: {s}"),
    Format("twilio_api_key", _cat("S", "K", _r(HEX, 32)), True, "TWILIO_API_KEY", kind="api key"),
    Format("datadog_pat", _cat("dd", "pat_", _r(ALNUM, 40)), True, "DD_PAT"),
    Format("telegram_bot", _cat(_digits(9, 10), ":A", _r(URLSAFE, 34)), True, "TELEGRAM_BOT_TOKEN"),
    Format("jwt", _jwt, True, "ID_TOKEN"),
    Format("mapbox_secret", _mapbox, True, "MAPBOX_ACCESS_TOKEN"),
    Format("discord_bot", _discord, True, "DISCORD_BOT_TOKEN", "Authorization: Bot {s}"),
    Format("facebook_page", _cat("EA", "AC", _r(ALNUM, 120)), True, "FB_PAGE_TOKEN"),
    Format("databricks", _cat("da", "pi", _r(HEX, 32)), True, "DATABRICKS_TOKEN"),
    Format("doppler", _cat("dp", ".pt.", _r(ALNUM, 43)), True, "DOPPLER_TOKEN"),
    Format(
        "dynatrace",
        _cat("dt0", "c01.", _r(UPPER_NUM, 24), ".", _r(UPPER_NUM, 64)),
        True,
        "DT_API_TOKEN",
        "Authorization: Api-Token {s}",
    ),
    Format("atlassian", _cat("ATA", "TT3xFfGF0", _r(URLSAFE, 170), "=", _r(HEX.upper(), 8)), True, "JIRA_API_TOKEN"),
    Format(
        "harness",
        _cat("pa", "t.", _r(URLSAFE, 22), ".", _r(ALNUM, 24), ".", _r(ALNUM, 20)),
        True,
        "HARNESS_API_KEY",
        "x-api-key: {s}",
        "api key",
    ),
    Format("terraform_cloud", _cat(_r(ALNUM, 14), ".atlas", "v1.", _r(URLSAFE, 67)), True, "TFE_TOKEN"),
    Format("pulumi", _cat("pu", "l-", _r(HEX, 40)), True, "PULUMI_ACCESS_TOKEN"),
    Format("planetscale", _cat("pscale", "_tkn_", _r(URLSAFE, 43)), True, "PLANETSCALE_SERVICE_TOKEN"),
    Format(
        "postman",
        _cat("PM", "AK-", _r(HEX, 24), "-", _r(HEX, 34)),
        True,
        "POSTMAN_API_KEY",
        "X-Api-Key: {s}",
        "api key",
    ),
    Format("prefect", _cat("pn", "u_", _r(ALNUM, 36)), True, "PREFECT_API_KEY", kind="api key"),
    Format("linear", _cat("lin", "_api_", _r(ALNUM, 40)), True, "LINEAR_API_KEY", kind="api key"),
    Format("notion", _cat("nt", "n_", _r(DIGITS, 11), _r(ALNUM, 35)), True, "NOTION_TOKEN"),
    Format("rubygems", _cat("ruby", "gems_", _r(HEX, 48)), True, "GEM_HOST_API_KEY", kind="api key"),
    Format("clojars", _cat("CLOJ", "ARS_", _r(LOWER_NUM, 60)), True, "CLOJARS_PASSWORD", kind="password"),
    Format("artifactory_api_key", _cat("AK", "Cp", _r(ALNUM, 69)), True, "ARTIFACTORY_API_KEY", "X-JFrog-Art-Api: {s}"),
    Format("newrelic_user", _cat("NR", "AK-", _r(UPPER_NUM, 27)), True, "NEW_RELIC_API_KEY", "Api-Key: {s}", "api key"),
    Format("grafana_service_account", _cat("gl", "sa_", _r(ALNUM, 32), "_", _r(HEX, 8)), True, "GRAFANA_TOKEN"),
    Format("grafana_cloud", _cat("gl", "c_", _r(B64, 120)), True, "GRAFANA_CLOUD_TOKEN"),
    Format("sentry_user", _cat("sntr", "yu_", _r(HEX, 64)), True, "SENTRY_AUTH_TOKEN"),
    Format("onepassword_service", _cat("ops", "_eyJ", _r(B64, 250)), True, "OP_SERVICE_ACCOUNT_TOKEN"),
    Format("age_secret_key", _cat("AGE-SECRET", "-KEY-1", _r(BECH32, 58)), True, "SOPS_AGE_KEY", kind="secret key"),
    Format(
        "alibaba_access_key", _cat("LT", "AI", _r(ALNUM, 20)), True, "ALIBABA_CLOUD_ACCESS_KEY_ID", kind="access key"
    ),
    Format("easypost", _cat("EZ", "AK", _r(ALNUM, 54)), True, "EASYPOST_API_KEY", kind="api key"),
    Format("fly", _cat("fo", "1_", _r(URLSAFE, 43)), True, "FLY_API_TOKEN", "Authorization: FlyV1 {s}"),
    Format("infracost", _cat("ic", "o-", _r(ALNUM, 32)), True, "INFRACOST_API_KEY", kind="api key"),
    Format("sourcegraph", _cat("sg", "p_", _r(HEX, 16), "_", _r(HEX, 40)), True, "SRC_ACCESS_TOKEN"),
    Format("sonarqube_user", _cat("sq", "u_", _r(HEX, 40)), True, "SONAR_TOKEN"),
    Format("tailscale", _cat("tskey", "-api-", _r(ALNUM, 12), "-", _r(ALNUM, 30)), True, "TS_API_KEY", kind="api key"),
    Format("buildkite", _cat("bk", "ua_", _r(HEX, 40)), True, "BUILDKITE_API_TOKEN"),
    Format("supabase", _cat("sb", "p_", _r(HEX, 40)), True, "SUPABASE_ACCESS_TOKEN"),
    Format("readme", _cat("rd", "me_", _r(LOWER_NUM, 70)), True, "README_API_KEY", kind="api key"),
    Format("sendinblue", _cat("xkey", "sib-", _r(HEX, 64), "-", _r(ALNUM, 16)), True, "BREVO_API_KEY", "api-key: {s}"),
    Format("shippo", _cat("shippo", "_live_", _r(HEX, 40)), True, "SHIPPO_API_TOKEN"),
    Format("square", _cat("EA", "AA", _r(URLSAFE, 60)), True, "SQUARE_ACCESS_TOKEN"),
    Format("dropbox", _cat("s", "l.", _r(URLSAFE, 135)), True, "DROPBOX_ACCESS_TOKEN"),
    Format("typeform", _cat("tf", "p_", _r(URLSAFE, 59)), True, "TYPEFORM_TOKEN"),
    Format("contentful", _cat("CF", "PAT-", _r(URLSAFE, 43)), True, "CONTENTFUL_MANAGEMENT_TOKEN"),
    Format("octopus", _cat("AP", "I-", _r(UPPER_NUM, 26)), True, "OCTOPUS_API_KEY", "X-Octopus-ApiKey: {s}", "api key"),
    Format("openshift", _cat("sha256", "~", _r(URLSAFE, 43)), True, "OPENSHIFT_TOKEN"),
    Format("mailchimp", _cat(_r(HEX, 32), "-us", _digits(1, 2)), True, "MAILCHIMP_API_KEY", kind="api key"),
    Format("nuget", _cat("oy", "2", _r(LOWER_NUM, 43)), True, "NUGET_API_KEY", "X-NuGet-ApiKey: {s}", "api key"),
    Format("airtable_pat", _cat("pa", "t", _r(ALNUM, 14), ".", _r(HEX, 64)), True, "AIRTABLE_TOKEN"),
    Format("bitbucket_app_password", _cat("AT", "BB", _r(ALNUM, 32)), True, "BITBUCKET_APP_PASSWORD", kind="password"),
    Format(
        "cloudflare_origin_ca", _cat("v1", ".0-", _r(HEX, 24), "-", _r(HEX, 146)), True, "CF_ORIGIN_CA_KEY", kind="key"
    ),
    Format("bedrock", _cat("AB", "SK", _b64_bytes(99)), True, "AWS_BEARER_TOKEN_BEDROCK"),
    Format("adobe_client_secret", _cat("p8", "e-", _r(ALNUM, 32)), True, "ADOBE_CLIENT_SECRET", kind="secret"),
    Format("clickhouse_cloud", _cat("4b", "1d", _r(ALNUM, 38)), True, "CLICKHOUSE_SECRET_KEY", kind="secret key"),
    Format("duffel", _cat("duffel", "_live_", _r(URLSAFE, 43)), True, "DUFFEL_ACCESS_TOKEN"),
    Format("flutterwave", _cat("FLWSECK", "_TEST-", _r("abcdefgh0123456789", 32), "-X"), True, "FLW_SECRET_KEY"),
    Format("frameio", _cat("fio", "-u-", _r(URLSAFE, 64)), True, "FRAMEIO_TOKEN"),
    Format("google_oauth_access", _cat("ya", "29.", _r(URLSAFE, 120)), True, "GOOGLE_ACCESS_TOKEN"),
    Format("intra42", _cat("s-s4t2", "ud-", _r(HEX, 64)), True, "INTRA42_CLIENT_SECRET", kind="secret"),
    Format("maxmind", _cat(_r(ALNUM, 6), "_", _r(ALNUM, 29), "_m", "mk"), True, "MAXMIND_LICENSE_KEY", kind="key"),
    Format(
        "onepassword_secret_key",
        _cat("A3", "-", _r(UPPER_NUM, 6), "-", _r(UPPER_NUM, 11), *("-", _r(UPPER_NUM, 5)) * 3),
        True,
        "OP_SECRET_KEY",
        kind="secret key",
    ),
    Format("replicate", _cat("r8", "_", _r(ALNUM, 37)), True, "REPLICATE_API_TOKEN"),
    Format("scalingo", _cat("tk-", "us-", _r(URLSAFE, 48)), True, "SCALINGO_API_TOKEN"),
    Format("settlemint", _cat("sm_", "pat_", _r(ALNUM, 16)), True, "SETTLEMINT_ACCESS_TOKEN"),
    Format("twitter_bearer", _cat("A" * 22, _r(ALNUM, 80)), True, "TWITTER_BEARER_TOKEN"),
    Format("xai", _cat("xa", "i-", _r(ALNUM, 80)), True, "XAI_API_KEY", kind="api key"),
    Format("yandex", _cat("AQ", "VN", _r(URLSAFE, 36)), True, "YC_API_KEY", kind="api key"),
    Format(
        "docker_config_json",
        lambda rng: base64.b64encode(
            json.dumps({"auths": {"registry.example.com": {"auth": _b64_bytes(24)(rng)}}}).encode()
        ).decode(),
        True,
        "DOCKER_CONFIG_JSON",
    ),
    # --- keyword formats: only the name, the header or the structure around them says they are secrets
    Format(
        "aws_secret_access_key", _r(ALNUM + "/+", 40), False, "AWS_SECRET_ACCESS_KEY", "X-Aws-Secret: {s}", "secret key"
    ),
    Format(
        "azure_storage_key", _b64_bytes(64), False, "AZURE_STORAGE_ACCOUNT_KEY", "x-ms-account-key: {s}", "account key"
    ),
    Format("azure_cosmosdb_key", _b64_bytes(64), False, "APP_COSMOSDB_KEY", "x-ms-cosmos-key: {s}", "key"),
    Format("azure_sas_signature", _b64_bytes(32), False, "AZURE_SAS_SIG", "x-ms-sig: {s}", "signature"),
    Format("azure_service_bus_key", _b64_bytes(32), False, "SERVICEBUS_SHARED_ACCESS_KEY", kind="access key"),
    Format("azure_devops_pat_legacy", _r("abcdefghijklmnopqrstuvwxyz234567", 52), False, "SYSTEM_ACCESSTOKEN"),
    Format("datadog_api_key", _r(HEX, 32), False, "DD_API_KEY", "DD-API-KEY: {s}", "api key"),
    Format("datadog_app_key", _r(HEX, 40), False, "DATADOG_APP_KEY", "DD-APPLICATION-KEY: {s}", "application key"),
    Format("heroku_legacy", _uuid, False, "HEROKU_API_KEY", kind="api key"),
    Format("snyk", _uuid, False, "SNYK_TOKEN", "Authorization: token {s}"),
    Format("twilio_auth_token", _r(HEX, 32), False, "TWILIO_AUTH_TOKEN"),
    Format("mailgun", _cat("key-", _r(HEX, 32)), False, "MAILGUN_API_KEY", kind="api key"),
    Format("okta", _cat("00", _r(URLSAFE, 40)), False, "OKTA_API_TOKEN", "Authorization: SSWS {s}"),
    Format("algolia_admin", _r(HEX, 32), False, "ALGOLIA_ADMIN_KEY", "X-Algolia-API-Key: {s}", "api key"),
    Format("cloudflare_api_token", _r(URLSAFE, 40), False, "CLOUDFLARE_API_TOKEN"),
    Format("sentry_legacy", _r(HEX, 64), False, "SENTRY_AUTH_TOKEN"),
    Format("github_classic_oauth", _r(HEX, 40), False, "GITHUB_OAUTH_TOKEN", "Authorization: token {s}"),
    Format("jenkins_api_token", _cat("11", _r(HEX, 32)), False, "JENKINS_API_TOKEN"),
    Format("npm_legacy", _uuid, False, "NPM_AUTH_TOKEN"),
    Format("launchdarkly", _cat("api-", _uuid), False, "LAUNCHDARKLY_ACCESS_TOKEN"),
    Format("codecov", _uuid, False, "CODECOV_TOKEN"),
    Format("confluent_secret", _r(ALNUM, 64), False, "CONFLUENT_CLOUD_API_SECRET", kind="secret"),
    Format("artifactory_password", _r(ALNUM, 64), False, "ARTIFACTORY_PASSWORD", kind="password"),
    Format("oauth_client_secret", _r(URLSAFE, 40), False, "OAUTH_CLIENT_SECRET", kind="client secret"),
    Format("django_secret_key", _r(ALNUM + "!@#%^*-_=+", 50), False, "DJANGO_SECRET_KEY", kind="secret key"),
    Format("db_password", _r(PASSWORD, 16), False, "DB_PASSWORD", kind="password"),
    Format("mysql_root_password", _r(PASSWORD, 20), False, "MYSQL_ROOT_PASSWORD", kind="password"),
    Format("keystore_password", _r(PASSWORD, 14), False, "ANDROID_KEYSTORE_PASSWORD", kind="password"),
    Format("gpg_passphrase", _r(PASSWORD, 24), False, "GPG_PASSPHRASE", kind="passphrase"),
    Format("api_token_generic", _r(ALNUM, 32), False, "INTERNAL_API_TOKEN"),
    Format("webhook_secret", _r(ALNUM, 40), False, "WEBHOOK_SECRET", kind="secret"),
    Format("iam_key", _b64_bytes(30), False, "APP_IAM_KEY", kind="key"),
)


# ---- contexts --------------------------------------------------------------------------------------
def _json_key(env: str) -> str:
    parts = env.lower().split("_")
    return parts[0] + "".join(p.title() for p in parts[1:])


def _yaml_key(env: str) -> str:
    return env.lower()


def _header(fmt: Format, s: str) -> str:
    return fmt.header.format(s=s)


def _keyword_contexts(fmt: Format, s: str, i: int) -> list[tuple[str, str, str]]:
    """(context, text, secret as it appears) for each keyword / structure context."""
    enc = quote(s, safe="")
    env, word = fmt.env, fmt.kind
    if fmt.url:
        url = "https://" + fmt.url.format(s=s)
        return [
            ("env", f"+ export {env}={url}", s),
            ("yaml", f"      webhook_url: {url}", s),
            ("json", json.dumps({"channel": "#ci", "webhook": url}), s),
            ("header", f"curl -sS -X POST -H 'Content-type: application/json' --data @msg.json {url}", s),
            ("url", f"POST {url} -> 404 no_service", s),
            ("cli", f"+ ./notify.sh --webhook-url {url} --channel ci", s),
            ("stack", f"com.acme.notify.WebhookException: invalid webhook {url}", s),
            ("maven_debug", f"[DEBUG]   (f) webhookUrl = {url}", s),
        ]
    cli_forms = [
        f"+ curl -sSf -u deploy:{s} https://artifacts.example.com/api/upload",
        f"+ docker login -u ci-bot -p {s} registry.example.com",
        f"+ ./gradlew publish -Psigning.password={s} --no-daemon",
        f"+ mvn -B deploy -Drepo.password={s}",
        f"+ helm repo add charts https://charts.example.com --username ci --password {s}",
        f"+ ./scripts/deploy.sh --token {s} --env staging",
        f"+ mysql -h db.internal -u root -p{s} app < schema.sql",
        f'+ curl -sS --user "ci:{s}" https://nexus.example.com/service/rest/v1/status',
        f"+ sshpass -p {s} ssh deploy@10.0.0.12 'systemctl restart app'",
        f"+ kubectl create secret generic app --from-literal=api-token={s}",
    ]
    url_forms = [
        (f"https://api.example.com/v2/reports?api_key={enc}&page=2", enc),
        (f"git clone https://oauth2:{enc}@git.example.com/platform/app.git", enc),
        (f"GET https://hooks.example.com/notify?token={enc} -> 401", enc),
        (f"DATABASE_URL=postgres://app:{enc}@db.internal:5432/app", enc),
        (f"https://ci-bot:{enc}@nexus.example.com/repository/maven-releases/", enc),
    ]
    stack_forms = [
        f"com.acme.deploy.RegistryException: registry rejected {word} {s} (HTTP 401)",
        f"Caused by: java.lang.IllegalStateException: invalid {word} '{s}' for project api",
        f"requests.exceptions.HTTPError: 401 Client Error: bad {word}: {s}",
        f"Error: Unauthorized: the {word} {s} has been revoked",
    ]
    url_text, url_secret = url_forms[i % len(url_forms)]
    return [
        ("env", f"+ export {env}={s}" if i % 2 else f"{env}={s}", s),
        ("yaml", f"      {_yaml_key(env)}: {s}", s),
        ("json", json.dumps({"name": "deploy", _json_key(env): s, "region": "eu-west-1"}), s),
        (
            "header",
            f'+ curl -sS -H "{_header(fmt, s)}" https://api.example.com/v1/deploy' if i % 2 else f"> {_header(fmt, s)}",
            s,
        ),
        ("url", url_text, url_secret),
        ("cli", cli_forms[i % len(cli_forms)], s),
        ("stack", stack_forms[i % len(stack_forms)], s),
        ("maven_debug", f"[DEBUG]   (f) {['password', 'token', 'apiKey', 'secret'][i % 4]} = {s}", s),
    ]


def _self_contexts(fmt: Format, s: str, i: int) -> list[tuple[str, str, str]]:
    if fmt.url:
        url = ("http://" if i % 2 else "https://") + fmt.url.format(s=s)
        return [
            ("bare", url, s),
            ("argument", f"+ ./notify.sh {url} release/1.4.2", s),
            ("message", f"ERROR: POST {url} failed: 410 Gone", s),
        ]
    return [
        ("bare", s if i % 2 else f"2026-05-15T10:21:33.0412Z {s}", s),
        ("argument", f"+ ./scripts/upload.sh {s} release/1.4.{i % 10}", s),
        ("message", f'java.lang.IllegalArgumentException: unexpected value "{s}" for field endpoint', s),
    ]


def _special_cases(rng: random.Random) -> list[Case]:
    """Structures with a format of their own: connection strings, SAS URLs, docker config, PEM keys …"""
    out: list[Case] = []
    key = _b64_bytes(64)(rng)
    conn = f"DefaultEndpointsProtocol=https;AccountName=ciartifacts;AccountKey={key};EndpointSuffix=core.windows.net"
    out += [
        Case("azure_connection_string", "env", "keyword", f'+ export AZURE_STORAGE_CONNECTION_STRING="{conn}"', (key,)),
        Case("azure_connection_string", "json", "keyword", json.dumps({"ConnectionStrings": {"Blob": conn}}), (key,)),
        Case(
            "azure_connection_string",
            "stack",
            "keyword",
            f"System.FormatException: Settings must be of the form 'name=value'. {conn};",
            (key,),
        ),
        Case("azure_connection_string", "line", "keyword", conn, (key,)),
    ]
    sig = _b64_bytes(32)(rng)
    sas = (
        "https://ciartifacts.blob.core.windows.net/builds/app-1.4.2.zip?sv=2022-11-02&ss=b&srt=co&sp=rl"
        f"&se=2026-06-01T00:00:00Z&st=2026-05-01T00:00:00Z&spr=https&sig={quote(sig, safe='')}"
    )
    out += [
        Case("azure_sas_url", "url", "keyword", f"Uploading to {sas}", (quote(sig, safe=""),)),
        Case("azure_sas_url", "cli", "keyword", f'+ azcopy copy ./dist "{sas}"', (quote(sig, safe=""),)),
        Case(
            "azure_sas_url",
            "env",
            "keyword",
            f"AZURE_STORAGE_SAS_TOKEN=?sv=2022-11-02&ss=b&srt=co&sp=rl&sig={quote(sig, safe='')}",
            (quote(sig, safe=""),),
        ),
    ]
    sb_key = _b64_bytes(32)(rng)
    sb = f"Endpoint=sb://ci-bus.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey={sb_key}"
    out.append(Case("azure_service_bus_connection", "env", "keyword", f'SERVICEBUS_CONNECTION="{sb}"', (sb_key,)))
    cosmos_key = _b64_bytes(64)(rng)
    cosmos = f"AccountEndpoint=https://ci-db.documents.azure.com:443/;AccountKey={cosmos_key};"
    out.append(Case("azure_cosmos_connection", "json", "keyword", json.dumps({"CosmosDb": cosmos}), (cosmos_key,)))
    pw = _r(PASSWORD, 18)(rng)
    auth = base64.b64encode(f"ci-bot:{pw}".encode()).decode()
    cfg = json.dumps({"auths": {"registry.example.com": {"auth": auth}}})
    out += [
        Case("docker_config_auth", "json", "keyword", cfg, (auth,)),
        Case("docker_config_auth", "cli", "keyword", f"+ echo '{cfg}' > ~/.docker/config.json", (auth,)),
        Case("docker_config_auth", "env", "keyword", f"DOCKER_AUTH_CONFIG={cfg}", (auth,)),
    ]
    app_id, app_secret = _digits(15, 15)(rng), _r(HEX, 32)(rng)
    out += [
        Case(
            "facebook_app_token",
            "url",
            "keyword",
            f"GET https://graph.facebook.com/v19.0/me?access_token={app_id}|{app_secret}",
            (app_secret,),
        ),
        Case("facebook_app_token", "bare", "self", f"{app_id}|{app_secret}", (app_secret,)),
        Case("facebook_app_token", "env", "keyword", f"FB_APP_TOKEN={app_id}|{app_secret}", (app_secret,)),
    ]
    long_pw = _r(ALNUM, 300)(rng)
    out.append(
        Case(
            "url_password_long",
            "url",
            "keyword",
            f"fatal: unable to access 'https://ci:{long_pw}@git.example.com/app.git/'",
            (long_pw,),
        )
    )
    dash_pw = "-" + _r(ALNUM, 19)(rng)
    out.append(
        Case(
            "docker_login_dash", "cli", "keyword", f"+ docker login -u ci -p {dash_pw} registry.example.com", (dash_pw,)
        )
    )
    fm2 = "fm2_" + _r(B64, 200)(rng)
    fm2b = "fm2_" + _r(B64, 180)(rng)
    out.append(Case("fly_macaroon", "header", "keyword", f"> Authorization: FlyV1 {fm2},{fm2b}", (fm2, fm2b)))
    api_tok = _r(ALNUM, 48)(rng)
    out.append(Case("unknown_scheme", "header", "keyword", f"> Authorization: Api-Token {api_tok}", (api_tok,)))
    curl_pw = _r(ALNUM, 24)(rng)
    store_pw = _r(ALNUM, 14)(rng)
    keytool = f"+ keytool -importkeystore -srckeystore a.jks -destkeystore b.p12 -deststorepass {store_pw}"
    out.append(Case("keytool_storepass", "cli", "keyword", keytool, (store_pw,)))
    out.append(
        Case(
            "curl_user",
            "cli",
            "keyword",
            f"+ curl -u admin:{curl_pw} -X POST https://jenkins.example.com/job/app/build",
            (curl_pw,),
        )
    )
    xml_pw = _r(PASSWORD, 20)(rng)
    out.append(Case("maven_settings", "xml", "keyword", f"      <password>{xml_pw}</password>", (xml_pw,)))
    nuget_pw = _r(ALNUM, 32)(rng)
    out.append(
        Case("nuget_config", "xml", "keyword", f'<add key="ClearTextPassword" value="{nuget_pw}" />', (nuget_pw,))
    )
    k8s_pw = _r(PASSWORD, 20)(rng)
    k8s_b64 = base64.b64encode(k8s_pw.encode()).decode()
    out.append(Case("kubernetes_secret", "yaml", "keyword", f"  password: {k8s_b64}", (k8s_b64,)))
    esc = "\x1b"  # a coloured log line (GitHub Actions, Gradle): the codes stay, the secret goes
    colour_pw, colour_tok = _r(PASSWORD, 18)(rng), "gh" + "p_" + _r(ALNUM, 36)(rng)
    out += [
        Case("ansi_coloured", "env", "keyword", f"{esc}[36;1mDB_PASSWORD={colour_pw}{esc}[0m", (colour_pw,)),
        Case("ansi_coloured", "bare", "self", f"{esc}[33m{colour_tok}{esc}[0m", (colour_tok,)),
    ]
    out += _private_keys(rng)
    return out


def _pem(label: str, rng: random.Random, lines: int) -> tuple[str, list[str]]:
    body = [_b64_bytes(48)(rng) for _ in range(lines)] + [_b64_bytes(20)(rng)]
    dash = "-" * 5
    return "\n".join([f"{dash}BEGIN {label}{dash}", *body, f"{dash}END {label}{dash}"]), body


def _private_keys(rng: random.Random) -> list[Case]:
    out = []
    for label, n in (
        ("RSA PRIVATE KEY", 12),
        ("OPENSSH PRIVATE KEY", 6),
        ("PRIVATE KEY", 8),
        ("EC PRIVATE KEY", 3),
        ("ENCRYPTED PRIVATE KEY", 10),
        ("PGP PRIVATE KEY BLOCK", 8),
        ("DSA PRIVATE KEY", 6),
    ):
        block, body = _pem(label, rng, n)
        name = "private_key_" + label.split()[0].lower()
        out.append(Case(name, "block", "keyword", f"+ cat deploy_key\n{block}\n+ chmod 600 deploy_key", tuple(body)))
        out.append(
            Case(
                name,
                "excerpt_line",
                "self",
                f"{rng.randrange(10, 999)}: {body[len(body) // 2]}",
                (body[len(body) // 2],),
            )
        )
    block, body = _pem("PRIVATE KEY", rng, 16)
    sa = {
        "type": "service_account",
        "project_id": "ci-project",
        "private_key_id": _r(HEX, 40)(rng),
        "private_key": block + "\n",
        "client_email": "ci@ci-project.iam.gserviceaccount.com",
    }
    out.append(Case("gcp_service_account", "json", "keyword", json.dumps(sa), tuple(body)))
    b64_pem = base64.b64encode(_pem("RSA PRIVATE KEY", rng, 6)[0].encode()).decode()
    out.append(Case("private_key_base64", "yaml", "self", f"  tls.key: {b64_pem}", (b64_pem,)))
    putty_body = [_b64_bytes(48)(rng) for _ in range(5)] + [_b64_bytes(10)(rng)]
    putty = "\n".join(
        [
            "PuTTY-User-Key-File-3: ssh-rsa",
            "Encryption: none",
            "Comment: deploy",
            "Public-Lines: 2",
            _b64_bytes(48)(rng),
            _b64_bytes(24)(rng),
            f"Private-Lines: {len(putty_body)}",
            *putty_body,
            "Private-MAC: " + _r(HEX, 64)(rng),
        ]
    )
    out.append(Case("putty_private_key", "block", "keyword", putty, tuple(putty_body)))
    return out


def cases(seed: int = SEED, formats: int | None = None) -> list[Case]:
    """Every format in every context (the first ``formats`` formats only, for a quick run)."""
    rng = random.Random(seed)
    out: list[Case] = []
    for i, fmt in enumerate(FORMATS[:formats]):
        s = fmt.make(rng)
        for ctx, text, secret in _keyword_contexts(fmt, s, i):
            out.append(Case(fmt.name, ctx, "keyword", text, (secret,)))
        if fmt.self_identifying:
            for ctx, text, secret in _self_contexts(fmt, fmt.make(rng), i):
                out.append(Case(fmt.name, ctx, "self", text, (secret,)))
    if formats is None:
        out += _special_cases(rng)
    return out


def caught(case: Case, redacted: str) -> bool:
    """No 8-character piece of the case's secrets survives redaction. Pieces that the text holds
    elsewhere anyway (``CLOJARS_`` of ``CLOJARS_PASSWORD=``) and the redaction markers do not count."""
    context = case.text
    for s in case.secrets:
        context = context.replace(s, "\n")
    out = re.sub(r"\[REDACTED:[a-z0-9_]+\]", "\n", redacted)
    for s in case.secrets:
        pieces = {s[k : k + 8] for k in range(max(1, len(s) - 7))}
        if any(p in out and p not in context for p in pieces):
            return False
    return True


# ---- look-alikes -----------------------------------------------------------------------------------
def _words_b64(rng: random.Random) -> str:
    sentence = (
        "the build failed because a dependency could not be resolved from the mirror so we retried the job "
        "after clearing the cache and the second attempt passed all integration tests in twelve minutes"
    )
    words = sentence.split(" ")
    text = " ".join(rng.choice(words) for _ in range(rng.randrange(40, 60))).capitalize() + "."
    return base64.b64encode(text.encode()).decode()


def lookalikes(seed: int = SEED) -> list[LookAlike]:
    rng = random.Random(seed + 1)
    out: list[LookAlike] = []

    def hx(n: int) -> str:
        return _r(HEX, n)(rng)

    def add(cls: str, *texts: str) -> None:
        out.extend(LookAlike(cls, t) for t in texts)

    for _ in range(3):
        sha = hx(40)
        add(
            "git_sha",
            f"HEAD is now at {sha[:7]} Fix the flaky token refresh test",
            f" > git checkout -f {sha} # timeout=10",
            f"Checking out Revision {sha} (refs/remotes/origin/main)",
            f"GIT_COMMIT={sha}",
            f'"sha": "{sha}",',
            f"commit {sha}",
            f"Merge {hx(40)} into {hx(40)}",
        )
        uuid = _uuid(rng)
        add(
            "uuid",
            f"Request id {uuid} failed",
            f"X-Request-Id: {uuid}",
            f'"buildId": "{uuid}"',
            f"run_id={uuid}",
            f"token_id={uuid}",
            f"Temporarily overriding HOME='/home/runner/work/_temp/{_uuid(rng)}'",
        )
        add(
            "digest",
            f"Digest: sha256:{hx(64)}",
            f"ghcr.io/acme/app@sha256:{hx(64)}",
            f"{hx(40)}  build/libs/app-1.4.2.jar",
            f'"checksum": "{hx(64)}"',
            f"Cache restored from key: Linux-gradle-{hx(64)}",
            f"CACHE_KEY=v1-deps-linux-{hx(32)}",
            f"  key: Linux-maven-{hx(64)}",
            f"traceId={hx(32)} spanId={hx(16)}",
            f"Successfully built {hx(12)}",
            f"{hx(12)}: Pull complete",
            f"GPG_KEY={hx(40).upper()}",
        )
        add(
            "integrity",
            f'"integrity": "sha512-{_b64_bytes(64)(rng)}"',
            f'<script src="app.js" integrity="sha384-{_b64_bytes(48)(rng)}" crossorigin="anonymous"></script>',
            f'  resolved "https://registry.yarnpkg.com/lodash/-/lodash-4.17.21.tgz#{hx(40)}"',
            f"    integrity sha1-{_b64_bytes(20)(rng)}",
        )
        b64 = _words_b64(rng)
        add(
            "base64_words",
            *(b64[k : k + 76] for k in range(0, min(len(b64), 228), 76)),
            f"data: {b64[:120]}",
            f'"message": "{b64[:96]}"',
        )
    add(
        "java_class",
        "\tat com.acme.security.TokenService.refresh(TokenService.java:42)",
        "org.springframework.security.oauth2.server.resource.InvalidBearerTokenException: Invalid token",
        "io.jsonwebtoken.ExpiredJwtException: JWT expired at 2026-05-01T10:00:00Z. Current time: 2026-05-01T10:05:00Z",
        "Caused by: com.amazonaws.services.secretsmanager.model.ResourceNotFoundException: "
        "Secrets Manager can't find the specified secret.",
        "            java.lang.String token = frames.nextToken();",
        "    private final PasswordEncoder passwordEncoder;",
        "        password = config.getPassword();",
        "        token = authService.issueToken(user);",
        "[ERROR] /home/runner/work/app/src/main/java/com/acme/auth/ApiKeyFilter.java:[31,8] class ApiKeyFilter is"
        " public",
        "Running com.acme.security.SecretKeyRotationTest",
        "Tests run: 3, Failures: 1, Errors: 0, Skipped: 0, Time elapsed: 0.412 s <<< FAILURE! - in "
        "com.acme.auth.PasswordPolicyTest",
        "kotlin.UninitializedPropertyAccessException: lateinit property apiKey has not been initialized",
        "[DEBUG]   (f) password = ${env.REPO_PASSWORD}",
        "[DEBUG]   (s) tokenProvider = com.acme.security.JwtTokenProvider@5a2e4553",
    )
    add(
        "maven_coordinate",
        "[INFO] +- io.jsonwebtoken:jjwt-api:jar:0.11.5:compile",
        "[INFO] |  \\- io.jsonwebtoken:jjwt-impl:jar:0.11.5:runtime",
        "Downloading from central: https://repo.maven.apache.org/maven2/io/jsonwebtoken/jjwt-api/0.11.5/jjwt-api-0.11.5.pom",
        '    implementation("io.jsonwebtoken:jjwt-api:0.11.5")',
        "[WARNING] The POM for com.auth0:java-jwt:jar:4.4.0 is missing, no dependency information available",
        "com.amazonaws.secretsmanager:aws-secretsmanager-jdbc:2.0.0",
        "org.springframework.security:spring-security-oauth2-jose:6.2.1",
        "Could not resolve com.acme:auth-token-client:1.4.2-SNAPSHOT.",
    )
    add(
        "gradle_path",
        "> Task :auth-token-service:compileJava",
        "> Task :secrets-client:test FAILED",
        "> Task :api-key-rotation:check UP-TO-DATE",
        "Execution failed for task ':token-store:compileKotlin'.",
        ":password-reset:jar",
        "> Task :auth-token-service:test",
    )
    add(
        "file_path",
        "/home/runner/work/app/app/src/main/java/com/acme/security/TokenProvider.java:[42,17] error: cannot find"
        " symbol",
        "private key file: /etc/ssl/private/server.key",
        "Using credentials from ~/.docker/config.json",
        "secrets/prod/db-password.txt: No such file or directory",
        "key_file: /run/secrets/api_key",
        "+ gcloud auth activate-service-account --key-file=/tmp/gcp-key.json",
        "GOOGLE_APPLICATION_CREDENTIALS=/tmp/gcp/credentials.json",
        "SSH_KEY_PATH=~/.ssh/id_ed25519",
        "PWD=/home/runner/work/app/app",
        "--password-file /run/secrets/registry_password",
        "export KUBECONFIG=/home/runner/.kube/config",
    )
    add(
        "version",
        "jjwt 0.11.5",
        "token-service v2.3.1",
        '"version": "1.2.3-SNAPSHOT"',
        "[INFO] Building secret-scanner 0.9.0-SNAPSHOT",
        "Using Gradle 8.5",
        "+ npm install @acme/secret-manager@1.4.0",
        "api_version: 2024-05-01",
    )
    add(
        "prose_after_secret_name",
        "auth-token-service: There are test failures.",
        "Secrets Manager: access denied for role deploy",
        "secret-rotation-job: Completed successfully",
        "[token-refresher] Starting scheduled refresh",
        "Token: expired",
        "password: Password must be at least 12 characters long",
        "api-key-service | Listening on port 8080",
        "credentials: Using default credentials chain",
        "Authorization: failed for user deploy",
        "Authorization header missing",
        "token is invalid or has expired",
        "Invalid token: expected a JSON object",
        "SyntaxError: Unexpected token '<' in JSON at position 0",
        "error: expected token ';' before '}' token",
        "Using token authentication for registry.example.com",
        "The secret key must be set to use sessions",
        "Bearer token required",
        "No credentials specified",
        "[main] ERROR eu.stamp_project.dspot.common.compilation.TestCompiler - Pb(232) Syntax error on token "
        '"class", delete this token',
        "Secret: not found",
        'Password authentication failed for user "app"',
        "KeyError: 'api_key'",
        "warning: secret scanning found 0 secrets",
        "WARNING! Using --password via the CLI is insecure. Use --password-stdin.",
        "Your password has been saved to /root/.docker/config.json",
        'Authenticating with public key "imported-openssh-key"',
        'Caused by: org.postgresql.util.PSQLException: FATAL: password authentication failed for user "app"',
        'Error from server (NotFound): secrets "db-credentials" not found',
    )
    add(
        "empty_values",
        "  GITHUB_TOKEN:\n  NPM_CONFIG_REGISTRY: https://registry.npmjs.org/",
        "    secrets: inherit",
        "      token: ${{ secrets.NPM_TOKEN }}",
        "env:\n  API_KEY: ***\n  REGION: eu-west-1",
        "  SONAR_TOKEN: \n  SONAR_HOST_URL: https://sonar.example.com",
        "with:\n  token: ${{ github.token }}",
        "password:\n  - length: 12",
    )
    add(
        "placeholder",
        "DB_PASSWORD=***",
        "Token: [MASKED]",
        "password = <your-password>",
        "API_KEY=$API_KEY",
        "+ docker login -u ci -p $CI_REGISTRY_PASSWORD $CI_REGISTRY",
        '+ echo "$REGISTRY_TOKEN" | docker login --password-stdin -u ci registry.example.com',
        "password: ${DB_PASSWORD}",
        "token=%GITHUB_TOKEN%",
        "secret: {{ .Values.secret }}",
        "Authorization: Bearer ${TOKEN}",
        "password: ********",
        "curl -u deploy:$DEPLOY_PASSWORD https://artifacts.example.com",
        "+ mysql -u root -p app",
        "+ docker run -p 8080:80 nginx:1.25",
        "+ docker run -u 1000:1000 -v $PWD:/src builder",
        'git config --global url."https://${GITHUB_TOKEN}@github.com/".insteadOf "https://github.com/"',
        "Setting GITHUB_TOKEN for the job: ***",
        "[DEBUG]   (f) passphrase = ${gpg.passphrase}",
    )
    add(
        "setting",
        "max_tokens=4000 temperature=0",
        "prompt_tokens: 120, completion_tokens: 48",
        "TOKENIZERS_PARALLELISM=false",
        "password_min_length: 12",
        "token_ttl=3600",
        "token_type=bearer expires_in=3600",
        "secret_name=my-app-secret",
        "PASSWORD_MIN_LENGTH=12",
        "passed=12 failed=0 skipped=3",
        "bypass_cache=true",
        "KEY_ALIAS=release",
        "primary key: id",
        "auth: basic",
        "AUTH_TYPE=oauth2",
        "signature: SHA256withRSA",
        "keyboard-layout: us",
        "SECRET_STORE=vault",
        "api_key_header: X-Api-Key",
        "secretRef: app-secrets",
        "token_url: https://auth.example.com/oauth/token",
        "+ docker buildx build --secret id=npm,src=.npmrc -t app .",
        "  secret-key-ref: app-secrets/api-key",
        'WWW-Authenticate: Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:acme/app:pull"',
    )
    add(
        "public_key",
        f"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{_r(B64, 43)(rng)} deploy@ci",
        f"github.com ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQ{_r(B64, 300)(rng)}",
        "\n".join(
            ["-----BEGIN CERTIFICATE-----", *(_b64_bytes(48)(rng) for _ in range(6)), "-----END CERTIFICATE-----"]
        ),
        "\n".join(["-----BEGIN PUBLIC KEY-----", *(_b64_bytes(48)(rng) for _ in range(4)), "-----END PUBLIC KEY-----"]),
        f'gpg: key {hx(16).upper()}: public key "Release Signing <release@example.com>" imported',
    )
    add(
        "url",
        "https://github.com/acme/app.git",
        "git@github.com:acme/app.git",
        "ssh://git@github.com:22/acme/app.git",
        "https://ci-bot@bitbucket.org/acme/app.git",
        "http://localhost:8080/health",
        "https://registry.npmjs.org/@types%2fnode",
        f"https://gradle.com/s/{_r(LOWER_NUM, 13)(rng)}",
        "mailto:dev@example.com",
        "https://auth.example.com/oauth/authorize?client_id=ci-bot&response_type=code",
    )
    add(
        "generated_id",
        f"api-{_r(LOWER_NUM, 10)(rng)}-{_r(LOWER_NUM, 5)(rng)}   1/1   Running   0   3m",
        f"correlationId={_r(ALNUM, 22)(rng)} status=500",
        f"Publishing build scan... https://gradle.com/s/{_r(LOWER_NUM, 13)(rng)}",
        f"Run ID: {rng.randrange(10**9, 10**10)}",
        f"Job {_r(ALNUM, 20)(rng)} queued",
        f"artifact {_r(LOWER_NUM, 24)(rng)}.zip uploaded",
    )
    return out


def main() -> None:
    """Print what the corpus holds (``python benchmarks/redaction_corpus.py``)."""
    all_cases, looks = cases(), lookalikes()
    by_context: dict[str, int] = {}
    for c in all_cases:
        by_context[f"{c.category}/{c.context}"] = by_context.get(f"{c.category}/{c.context}", 0) + 1
    print(f"{'context':24} {'cases':>5}")
    for ctx, n in sorted(by_context.items()):
        print(f"{ctx:24} {n:5d}")
    self_formats = sum(1 for f in FORMATS if f.self_identifying)
    print(
        f"formats={len({c.format for c in all_cases})} self_identifying_formats={self_formats} cases={len(all_cases)} "
        f"lookalikes={len(looks)} lookalike_classes={len({la.cls for la in looks})}"
    )


if __name__ == "__main__":
    main()
