"""Planted secrets and look-alikes for the redaction tests.

Every secret is generated here (deterministically, from a seeded RNG) and assembled from pieces, so
no real-looking credential is stored in the repository as a literal and secret scanners stay quiet.
``PLANTED`` lists (kind, text containing the secret, the secret values that must disappear);
``LOOKALIKES`` lists lines that must come out of :func:`redact` unchanged.
"""

from __future__ import annotations

import base64
import json
import random
import string

_rng = random.Random(20260315)
ALNUM = string.ascii_letters + string.digits
UPPER_NUM = string.ascii_uppercase + string.digits
B64 = string.ascii_letters + string.digits + "+/"
URLSAFE = string.ascii_letters + string.digits + "-_"


def rand(alphabet: str, n: int) -> str:
    # guarantee mixed classes (a realistic token) without quotes, backslashes or spaces
    while True:
        s = "".join(_rng.choice(alphabet) for _ in range(n))
        if sum(
            any(c in cls for c in s) for cls in (string.ascii_lowercase, string.ascii_uppercase, string.digits)
        ) >= min(2, len({c for c in alphabet if c.isalpha()}) and 2):
            return s


def pem(label: str, lines: int = 8) -> tuple[str, list[str]]:
    body = [rand(B64, 64) for _ in range(lines)] + [rand(B64, 28) + "=="]
    dash = "-" * 5
    text = "\n".join([f"{dash}BEGIN {label}{dash}", *body, f"{dash}END {label}{dash}"])
    return text, body


def jwt() -> str:
    def seg(obj: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return (
        seg({"alg": "HS256", "typ": "JWT"})
        + "."
        + seg({"sub": rand(ALNUM, 10), "iat": 1700000000, "role": "deployer"})
        + "."
        + rand(URLSAFE, 43)
    )


_rsa, _rsa_body = pem("RSA " + "PRIVATE KEY")
_ossh, _ossh_body = pem("OPENSSH " + "PRIVATE KEY", 5)
_pkcs8, _pkcs8_body = pem("PRIVATE " + "KEY", 4)
_ec, _ec_body = pem("EC " + "PRIVATE KEY", 3)

AWS_ID = "AK" + "IA" + rand(UPPER_NUM, 16)
AWS_SECRET = rand(ALNUM + "/+", 40)
GHP = "gh" + "p_" + rand(ALNUM, 36)
GHS = "gh" + "s_" + rand(ALNUM, 36)
GHO = "gh" + "o_" + rand(ALNUM, 36)
GH_PAT = "github" + "_pat_" + rand(ALNUM, 22) + "_" + rand(ALNUM, 59)
GLPAT = "gl" + "pat-" + rand(ALNUM + "-_", 20)
GLRT = "gl" + "rt-" + rand(ALNUM, 24)
XOXB = "xo" + "xb-" + "-".join(rand(string.digits, n) for n in (12, 13)) + "-" + rand(ALNUM, 24)
XOXP = "xo" + "xp-" + "-".join(rand(string.digits, n) for n in (12, 12, 13)) + "-" + rand("abcdef" + string.digits, 32)
SLACK_HOOK = (
    "https://hooks." + "slack.com/services/T" + rand(UPPER_NUM, 8) + "/B" + rand(UPPER_NUM, 10) + "/" + rand(ALNUM, 24)
)
OPENAI_PROJ = "sk" + "-proj-" + rand(ALNUM + "-_", 64)
OPENAI_OLD = "sk" + "-" + rand(ALNUM, 48)
ANTHROPIC = "sk" + "-ant-api03-" + rand(ALNUM + "-_", 80)
GOOGLE = "AI" + "za" + rand(ALNUM + "-_", 35)
STRIPE = "sk" + "_live_" + rand(ALNUM, 24)
NPM = "np" + "m_" + rand(ALNUM, 36)
TELEGRAM = str(_rng.randrange(10**8, 10**9)) + ":AA" + rand(ALNUM + "-_", 33)
JWT = jwt()
BEARER = rand(ALNUM + "-._~", 40)
BASIC = base64.b64encode(("deploy:" + rand(ALNUM, 16)).encode()).decode()
URL_PW1 = rand(ALNUM, 14) + "!x"
URL_PW2 = rand(ALNUM, 12)
URL_PW3 = rand(ALNUM, 10)
DB_PASSWORD = rand(ALNUM, 18)
API_TOKEN = rand(ALNUM, 32)
CLIENT_SECRET = rand(ALNUM + "-_", 30)
YAML_PASSWORD = rand(ALNUM, 12)
SECRET_KEY = rand(ALNUM + "@#%^&*", 40)
MYSQL_ROOT = rand(ALNUM, 16)
CLI_PASSWORD = rand(ALNUM, 14)
CLI_TOKEN = rand(ALNUM, 28)
NEAR_TOKEN = rand(ALNUM, 32)
NEAR_SECRET = rand(ALNUM + "+/", 28)
NEAR_APIKEY = rand(ALNUM, 24)
SHORT_PASSWORD = "hunter2!"
LOGIN_PASSWORD = rand(ALNUM, 16)
MYSQL_CLI = rand(ALNUM, 14)

#: (kind, text, secrets that must not survive)
PLANTED: list[tuple[str, str, list[str]]] = [
    ("private_key", _rsa, _rsa_body),
    ("private_key", "key material follows\n" + _ossh + "\ndone", _ossh_body),
    ("private_key", _pkcs8, _pkcs8_body),
    ("private_key", _ec, _ec_body),
    ("aws_access_key", f"AWS_ACCESS_KEY_ID={AWS_ID}", [AWS_ID]),
    ("aws_access_key", f"using access key {AWS_ID} for s3 upload", [AWS_ID]),
    ("aws_secret_key", f"aws_secret_access_key = {AWS_SECRET}", [AWS_SECRET]),
    ("github_token", f"git clone https://x-access-token:{GHS}@github.com/org/repo.git", [GHS]),
    ("github_token", f"GITHUB_TOKEN={GHP}", [GHP]),
    ("github_token", f"echo {GHO} | gh auth login --with-token", [GHO]),
    ("github_token", f"token: {GH_PAT}", [GH_PAT]),
    ("gitlab_token", f"curl --header 'PRIVATE-TOKEN: {GLPAT}' https://gitlab.example.com/api/v4/projects", [GLPAT]),
    ("gitlab_token", f"Registering runner... token={GLRT}", [GLRT]),
    ("slack_token", f"SLACK_BOT_TOKEN={XOXB}", [XOXB]),
    ("slack_token", f"posting with {XOXP}", [XOXP]),
    ("slack_webhook", f"curl -X POST -d @payload.json {SLACK_HOOK}", [SLACK_HOOK.rsplit("/", 1)[1]]),
    ("openai_key", f"OPENAI_API_KEY={OPENAI_PROJ}", [OPENAI_PROJ]),
    ("openai_key", f"openai.AuthenticationError: Incorrect API key provided: {OPENAI_OLD}", [OPENAI_OLD]),
    ("openai_key", f"ANTHROPIC_API_KEY: {ANTHROPIC}", [ANTHROPIC]),
    ("google_api_key", f"maps key {GOOGLE} rejected", [GOOGLE]),
    ("stripe_key", f"Stripe::AuthenticationError (Invalid API Key provided: {STRIPE})", [STRIPE]),
    ("npm_token", f"//registry.npmjs.org/:_authToken={NPM}", [NPM]),
    ("telegram_token", f"POST https://api.telegram.org/bot{TELEGRAM}/sendMessage failed", [TELEGRAM]),
    ("jwt", f"id_token={JWT}", [JWT]),
    ("jwt", f"decoded {JWT} ok", [JWT]),
    ("authorization", f"> Authorization: Bearer {BEARER}", [BEARER]),
    ("authorization", f'curl -H "Authorization: Basic {BASIC}" https://repo.example.com', [BASIC]),
    ("authorization", f"authorization: token {GHP}", [GHP]),
    ("authorization", f'{{"headers": {{"Authorization": "Bearer {BEARER}"}}}}', [BEARER]),
    ("url_password", f"fatal: unable to access 'https://deploy:{URL_PW1}@git.example.com/app.git/': 403", [URL_PW1]),
    ("url_password", f"DATABASE_URL=postgres://admin:{URL_PW2}@db.internal:5432/app", [URL_PW2]),
    ("url_password", f"connecting to redis://:{URL_PW3}@cache:6379/0", [URL_PW3]),
    ("secret", f"export DB_PASSWORD={DB_PASSWORD}", [DB_PASSWORD]),
    ("secret", f"API_TOKEN='{API_TOKEN}'", [API_TOKEN]),
    ("secret", f'{{"client_id": "ci-bot", "client_secret": "{CLIENT_SECRET}"}}', [CLIENT_SECRET]),
    ("secret", f"  password: {YAML_PASSWORD}", [YAML_PASSWORD]),
    ("secret", f'SECRET_KEY = "{SECRET_KEY}"', [SECRET_KEY]),
    ("secret", f"docker run -e MYSQL_ROOT_PASSWORD={MYSQL_ROOT} mysql:8", [MYSQL_ROOT]),
    ("secret", f"mvn deploy -Drepo.password={CLI_PASSWORD}", [CLI_PASSWORD]),
    ("secret", f"./deploy.sh --password {CLI_PASSWORD} --user ci", [CLI_PASSWORD]),
    ("secret", f"sonar-scanner --token={CLI_TOKEN}", [CLI_TOKEN]),
    ("secret", f"PASSWORD={SHORT_PASSWORD}", [SHORT_PASSWORD]),
    ("high_entropy", f"Using token {NEAR_TOKEN} for the registry", [NEAR_TOKEN]),
    ("high_entropy", f"the secret is: {NEAR_SECRET}", [NEAR_SECRET]),
    ("high_entropy", f"api key {NEAR_APIKEY} expired", [NEAR_APIKEY]),
    ("secret", f"$ docker login -u ci -p {LOGIN_PASSWORD} registry.example.com", [LOGIN_PASSWORD]),
    ("secret", f"mysql -h db -u root -p{MYSQL_CLI} app < schema.sql", [MYSQL_CLI]),
    ("aws_secret_key", f"aws_secret_access_key = {AWS_SECRET}", [AWS_SECRET]),
]

#: Strings that look a bit like secrets but are not: they must survive redaction unchanged.
LOOKALIKES: list[str] = [
    "HEAD is now at 1a2b3c4 Fix the build",
    " > git checkout -f 779ff9c0c30a8e6e745844ba2c84ef74054f6f7a # timeout=10",
    "Checking out 4e8932e579d2e085ea2d9e6e88035d1ad0ad16a6 (rev: 4e8932e579d2e085ea2d9e6e88035d1ad0ad16a6)",
    "GIT_COMMIT=779ff9c0c30a8e6e745844ba2c84ef74054f6f7a",
    "Digest: sha256:" + "9b2a" * 16,
    "ghcr.io/acme/app@sha256:" + "0f1e2d3c4b5a6978" * 4,
    "Request id 123e4567-e89b-12d3-a456-426614174000 failed",
    "Temporarily overriding HOME='/home/runner/work/_temp/df99e90f-cb97-4b55-ba34-2585fd34af5b'",
    "[INFO] Building spoon-core 8.2.0-SNAPSHOT",
    "max_tokens=4000 temperature=0",
    "prompt_tokens: 120, completion_tokens: 48",
    "TOKENIZERS_PARALLELISM=false",
    "password: ********",
    "DB_PASSWORD=***",
    "Token: [MASKED]",
    "echo $REGISTRY_PASSWORD | docker login --password-stdin -u ci registry.example.com",
    "Authorization: Bearer ${TOKEN}",
    "Authorization header missing",
    "token_type=bearer expires_in=3600",
    "secret_name=my-app-secret",
    "PASSWORD_MIN_LENGTH=12",
    "passed=12 failed=0 skipped=3",
    "bypass_cache=true",
    "CACHE_KEY=v1-deps-linux",
    "password = ${{ secrets.DEPLOY_PASSWORD }}",
    "\tat com.example.auth.TokenService.refresh(TokenService.java:42)",
    "java.lang.IllegalStateException: token expired",
    "private key file: /etc/ssl/private/server.key",
    '"integrity": "sha512-Aa0Bb1Cc2Dd3Ee4Ff5Gg6Hh7Ii8Jj9KkLlMmNnOoPpQqRrSsTtUuVvWwXxYyZz0123456789AbCdEf+/gh=="',
    (
        "Downloaded from central: https://repo.maven.apache.org/maven2/org/ow2/asm/asm/9.2/asm-9.2.jar "
        "(122 kB at 1.2 MB/s)"
    ),
    "ssh://git@github.com:22/acme/app.git",
    "mailto:dev@example.com",
    "http://localhost:8080/health",
    "Tests run: 12, Failures: 0, Errors: 0, Skipped: 0, Time elapsed: 1.234 s",
    "export PATH=/usr/local/bin:$PATH",
    '[WARNING] The requested profile "secret-scan" could not be activated because it does not exist.',
    "docker login -u ci -p $CI_REGISTRY_PASSWORD $CI_REGISTRY",
    "docker run -p 8080:80 nginx:1.25",
    "mysql -u root -p app",
    "Running com.google.inject.errors.ScopeNotFoundErrorTest",
]
