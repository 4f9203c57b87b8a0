"""Self-identifying credential formats: tokens whose prefix (or fixed marker) says what they are, so
they are redacted wherever they appear, with no keyword nearby.

Each :class:`TokenFormat` is our own pattern, written from the vendors' documented facts (prefix,
alphabet, length) as public secret-scanner catalogues list them. Lengths are lower bounds where a
vendor may lengthen its tokens (a longer token is still a secret).

* ``needles``: case-sensitive literals of which every match contains one; :mod:`.redact` runs the
  pattern only on the lines that hold a needle (an empty tuple: on every candidate line).
* ``triggers``: what the fast path looks for in the lower-cased text before any rule runs; by default
  the needles in lower case. A pattern trigger (``trigger_patterns``) starts with a rare character
  and is for needles too common to look for on their own (``sk``, ``|``).
* ``random``: the body must look generated (two or more of upper case, lower case and digits, not a
  word), for prefixes that are also ordinary strings.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

# left / right boundaries: a token is not glued to other token characters. The left one is checked
# by :mod:`.redact` (so that each pattern starts with its literal prefix, which the regex engine
# searches fast, and so that the end of a colour code such as ESC[33m before a token is allowed).
_L = "<left:A-Za-z0-9_>"
_LD = "<left:A-Za-z0-9_->"
_R = r"(?![A-Za-z0-9_])"
_RD = r"(?![A-Za-z0-9_-])"
_B64 = r"[A-Za-z0-9+/]"


@dataclass(frozen=True)
class TokenFormat:
    kind: str
    regex: re.Pattern[str]
    needles: tuple[str, ...]
    triggers: tuple[str, ...]
    trigger_patterns: tuple[str, ...]
    random: bool = False
    left: frozenset[str] = frozenset()  # characters that may not stand right before a match
    whole_text: bool = False  # the pattern starts with a literal: run it over the whole text at once


def _f(
    kind: str,
    pattern: str,
    needles: str | tuple[str, ...],
    *,
    trig: tuple[str, ...] = (),
    random: bool = False,
) -> TokenFormat:
    needles = (needles,) if isinstance(needles, str) else needles
    triggers = () if trig else tuple(sorted({n.lower() for n in needles}))
    left: frozenset[str] = frozenset()
    m = re.match(r"<left:([^>]+)>", pattern)
    if m:
        pattern = pattern[m.end() :]
        chars = m.group(1).replace("A-Z", string.ascii_uppercase).replace("a-z", string.ascii_lowercase)
        left = frozenset(chars.replace("0-9", string.digits))
    whole = bool(re.match(r"[A-Za-z0-9]|\(\?:[A-Za-z]|\[[a-zA-Z]{2,4}\]", pattern))
    return TokenFormat(kind, re.compile(pattern), needles, triggers, trig, random, left, whole)


def _prefixes(*words: str, sep: str = "-") -> tuple[str, ...]:
    return tuple(w + sep for w in words)


_GITLAB = ("glpat", "glptt", "gldt", "glrt", "glcbt", "glsoat", "glffct", "glft", "glimt", "glagent", "gloas", "glwt")

FORMATS: tuple[TokenFormat, ...] = (
    # --- source hosting and CI
    _f("github_token", _L + r"gh[pousr]_[A-Za-z0-9]{30,255}" + _R, ("ghp_", "gho_", "ghu_", "ghs_", "ghr_")),
    _f("github_token", _L + r"github_pat_[A-Za-z0-9_]{40,255}" + _R, "github_pat_"),
    _f(
        "gitlab_token",
        # classic (prefix + 20) and routable tokens (a longer body, then one or two dotted suffixes)
        _L + r"(?:" + "|".join(_GITLAB) + r")-[A-Za-z0-9_-]{20,320}(?:\.[A-Za-z0-9]{2,12}){0,2}" + _RD,
        _prefixes(*_GITLAB),
    ),
    _f("gitlab_token", _L + r"GR1348941[A-Za-z0-9_-]{20,}" + _RD, "GR1348941"),
    _f("gitlab_token", r"(?<=_gitlab_session=)[0-9a-f]{32}" + _R, "_gitlab_session="),
    _f("bitbucket_token", _L + r"ATBB[A-Za-z0-9_=.-]{28,}" + _R, "ATBB"),
    _f("atlassian_token", _L + r"ATATT3[A-Za-z0-9_=-]{100,}" + _RD, "ATATT3"),
    _f("buildkite_token", _L + r"bkua_[a-f0-9]{40}" + _R, "bkua_"),
    _f("azure_devops_pat", _L + r"[A-Za-z0-9]{76}AZDO[A-Za-z0-9]{4}" + _R, "AZDO"),
    _f("sourcegraph_token", _L + r"sgp_(?:[a-fA-F0-9]{16}_|local_)?[a-fA-F0-9]{40}" + _R, "sgp_"),
    _f("sonarqube_token", _L + r"sq[upa]_[a-f0-9]{40}" + _R, ("squ_", "sqp_", "sqa_")),
    _f(
        "harness_token",
        _L + r"(?:pat|sat)\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9]{16,}(?:\.[A-Za-z0-9]{16,})?" + _R,
        ("pat.", "sat."),
    ),
    # --- chat, webhooks
    _f("slack_token", _L + r"xox[abposre]-[A-Za-z0-9-]{10,}" + _RD, "xox"),
    _f("slack_token", _L + r"xoxe\.xox[bp]-\d-[A-Za-z0-9]{60,}" + _R, "xoxe."),
    _f("slack_token", _L + r"xapp-\d-[A-Za-z0-9-]{10,}" + _RD, "xapp-"),
    _f(
        "slack_webhook",
        r"(?<=hooks\.slack\.com/)(?:services|workflows|triggers)/[A-Za-z0-9_/+-]{20,}",
        "hooks.slack.com/",
    ),
    _f(
        "slack_webhook",
        r"(?<=hooks\.slack-gov\.com/)(?:services|workflows|triggers)/[A-Za-z0-9_/+-]{20,}",
        "hooks.slack-gov.com/",
    ),
    _f("teams_webhook", r"(?<=\.webhook\.office\.com/)webhookb2/[A-Za-z0-9@/-]{40,}", "webhook.office.com/"),
    _f("discord_webhook", r"(?<=discord\.com/api/webhooks/)\d{5,25}/[A-Za-z0-9_-]{40,}", "discord.com/api/webhooks/"),
    _f(
        "discord_webhook",
        r"(?<=discordapp\.com/api/webhooks/)\d{5,25}/[A-Za-z0-9_-]{40,}",
        "discordapp.com/api/webhooks/",
    ),
    _f(
        "discord_token",
        # base64 of the bot's numeric id (it starts M, N or O), a 6-character timestamp, an HMAC
        r"[MNO](?<![A-Za-z0-9_-][MNO])[A-Za-z0-9_-]{23,27}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,40}" + _RD,
        (),
        trig=(r"\.(?=[a-z0-9_-]{6}\.[a-z0-9_-]{27})",),
        random=True,
    ),
    _f("telegram_token", r"(?<![0-9])[0-9]{5,16}:A[A-Za-z0-9_-]{34}" + _RD, ":A", trig=(r":a[a-z0-9_-]{34}",)),
    # --- AI providers
    _f("openai_key", _LD + r"sk-[A-Za-z0-9_-]{20,}" + _RD, "sk-", trig=(r"k(?<=sk)-[a-z0-9_-]{20}",), random=True),
    _f("huggingface_token", _L + r"(?:hf|api_org)_[A-Za-z]{30,}" + _R, ("hf_", "api_org_"), random=True),
    _f("groq_key", _L + r"gsk_[A-Za-z0-9]{48,}" + _R, "gsk_"),
    _f("perplexity_key", _L + r"pplx-[A-Za-z0-9]{40,}" + _R, "pplx-"),
    _f("xai_key", _L + r"xai-[A-Za-z0-9]{60,}" + _R, "xai-"),
    _f("replicate_token", _L + r"r8_[A-Za-z0-9]{37,}" + _R, "r8_", random=True),
    # --- cloud
    _f(
        "aws_access_key",
        r"(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}(?![A-Z0-9])",
        ("AKIA", "ASIA", "ABIA", "ACCA", "A3T"),
    ),
    _f("aws_bedrock_key", _L + r"ABSK" + _B64 + r"{100,}={0,2}", "ABSK"),
    _f("google_api_key", _L + r"AIza[A-Za-z0-9_-]{35}" + _RD, "AIza"),
    _f("google_oauth_secret", _L + r"GOCSPX-[A-Za-z0-9_-]{24,}" + _RD, "GOCSPX-"),
    _f("google_oauth_token", _L + r"ya29\.[A-Za-z0-9_-]{30,}" + _RD, "ya29."),
    _f(
        "azure_client_secret",
        # three characters, a digit, "Q~", then 31-34 more (Entra ID / Azure AD application secrets)
        r"(?<![A-Za-z0-9_~.-])[A-Za-z0-9_~.]{3}[0-9]Q~[A-Za-z0-9_~.-]{31,34}(?![A-Za-z0-9_~.-])",
        "Q~",
    ),
    _f("alibaba_access_key", _L + r"LTAI[A-Za-z0-9]{20}" + _R, "LTAI"),
    _f("digitalocean_token", _L + r"do[opr]_v1_[a-f0-9]{64}" + _R, ("dop_v1_", "doo_v1_", "dor_v1_")),
    _f("heroku_key", _L + r"HRKU-[A-Za-z0-9_-]{40,}" + _RD, "HRKU-"),
    _f("vault_token", _L + r"hv[sbr]\.[A-Za-z0-9_-]{24,}" + _RD, ("hvs.", "hvb.", "hvr.")),
    _f("terraform_token", _L + r"[A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_=-]{60,}", ".atlasv1."),
    _f("pulumi_token", _L + r"pul-[a-f0-9]{40}" + _R, "pul-"),
    _f(
        "doppler_token",
        _L + r"dp\.(?:ct|pt|st|sa|said|scim|audit)\.(?:[a-z0-9_-]{2,35}\.)?[A-Za-z0-9]{40,}" + _R,
        "dp.",
    ),
    _f(
        "fly_token",
        _L + r"(?:fo1_[A-Za-z0-9_-]{40,}|fm[12][ar]?_" + _B64 + r"{40,}={0,3})",
        ("fo1_", "fm1", "fm2_"),
    ),
    _f("cloudflare_origin_key", _L + r"v1\.0-[a-f0-9]{24}-[a-f0-9]{140,}" + _R, "v1.0-"),
    _f("openshift_token", _L + r"sha256~[A-Za-z0-9_-]{43}" + _RD, "sha256~"),
    _f(
        "tailscale_key",
        _L + r"tskey-(?:api|auth|client|webhook|scim)-[A-Za-z0-9]{8,}-[A-Za-z0-9]{16,}" + _R,
        "tskey-",
    ),
    _f("databricks_token", _L + r"dapi[a-f0-9]{32}(?:-[0-9]+)?" + _R, "dapi"),
    _f("dynatrace_token", _L + r"dt0c01\.[A-Za-z0-9]{24}\.[A-Za-z0-9]{64}" + _R, "dt0c01."),
    _f(
        "datadog_token",
        _L + r"dd(?:pat|sat|app|ap)_[A-Za-z0-9_-]{20,}" + _RD,
        ("ddpat_", "ddsat_", "ddapp_", "ddap_"),
    ),
    _f("newrelic_key", _L + r"NR(?:AK|II|JS)-[A-Za-z0-9-]{19,}" + _RD, ("NRAK-", "NRII-", "NRJS-")),
    _f("grafana_token", _L + r"glc_" + _B64 + r"{32,}={0,3}", "glc_"),
    _f("grafana_token", _L + r"glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}" + _R, "glsa_"),
    _f("grafana_token", _L + r"eyJrIjoi[A-Za-z0-9]{40,}={0,3}", "eyJrIjoi"),
    _f("sentry_token", _L + r"sntrys_eyJ[A-Za-z0-9+/=_]{40,}", "sntrys_"),
    _f("sentry_token", _L + r"sntryu_[a-f0-9]{64}" + _R, "sntryu_"),
    _f("supabase_token", _L + r"sbp_[a-f0-9]{40}" + _R, "sbp_"),
    _f("planetscale_token", _L + r"pscale_(?:tkn|oauth|pw)_[A-Za-z0-9_=.-]{32,}", "pscale_"),
    _f("prefect_token", _L + r"pnu_[A-Za-z0-9]{36}" + _R, "pnu_"),
    _f("clickhouse_key", _L + r"4b1d[A-Za-z0-9]{38}" + _R, "4b1d", random=True),
    # --- packages and registries
    _f("npm_token", _L + r"npm_[A-Za-z0-9]{36}" + _R, "npm_"),
    _f("pypi_token", _L + r"pypi-AgE[A-Za-z0-9_-]{50,}", "pypi-AgE"),
    _f("docker_token", _L + r"dckr_(?:pat|oat)_[A-Za-z0-9_-]{20,}" + _RD, ("dckr_pat_", "dckr_oat_")),
    _f("rubygems_token", _L + r"rubygems_[a-f0-9]{48}" + _R, "rubygems_"),
    _f("nuget_key", _L + r"oy2[a-z0-9]{43}" + _R, "oy2", random=True),
    _f("clojars_token", _L + r"CLOJARS_[a-z0-9]{60}" + _R, "CLOJARS_"),
    _f("artifactory_token", _L + r"AKCp[A-Za-z0-9]{69}" + _R, "AKCp"),
    _f("artifactory_token", _L + r"cmVmdGtu[A-Za-z0-9]{56}" + _R, "cmVmdGtu"),
    _f("docker_config", _L + r"eyJhdXRocyI6" + _B64 + r"{20,}={0,2}", "eyJhdXRocyI6"),
    _f("readme_token", _L + r"rdme_[a-z0-9]{70}" + _R, "rdme_"),
    _f("infracost_token", _L + r"ico-[A-Za-z0-9]{32}" + _R, "ico-", trig=(r"-(?=[a-z0-9]{32})(?<=ico-)",), random=True),
    _f("scalingo_token", _L + r"tk-us-[A-Za-z0-9_-]{48}" + _RD, "tk-us-"),
    # --- payments, commerce, messaging, productivity
    _f(
        "stripe_key",
        _L + r"(?:sk|rk|pk)_(?:live|test|prod)_[A-Za-z0-9]{10,}" + _R,
        ("sk_", "rk_", "pk_"),
        trig=(r"_(?<=[spr]k_)(?:live|test|prod)_",),
    ),
    _f("stripe_key", _L + r"whsec_[A-Za-z0-9]{32,}" + _R, "whsec_"),
    _f("shopify_token", _L + r"shp(?:at|ss|ca|pa)_[a-fA-F0-9]{32}" + _R, ("shpat_", "shpss_", "shpca_", "shppa_")),
    _f(
        "square_token",
        _L + r"(?:EAAA|sq0atp-|sq0csp-)[A-Za-z0-9_-]{22,}" + _RD,
        ("EAAA", "sq0atp-", "sq0csp-"),
        random=True,
    ),
    _f("facebook_token", _L + r"EAA[MC][A-Za-z0-9]{80,}" + _R, ("EAAM", "EAAC")),
    _f(
        "facebook_token",
        r"(?<![0-9])[0-9]{13,17}(?:\||%7[Cc])[A-Za-z0-9_-]{24,40}" + _RD,
        ("|", "%7C", "%7c"),
        trig=(r"\|[a-z0-9_-]{24}", r"%7c[a-z0-9_-]{24}"),
    ),
    _f("sendgrid_key", _L + r"SG\.[A-Za-z0-9_-]{16,32}\.[A-Za-z0-9_-]{30,50}" + _RD, "SG."),
    _f("sendinblue_key", _L + r"xkeysib-[a-f0-9]{64}-[A-Za-z0-9]{16}" + _R, "xkeysib-"),
    _f(
        "mailchimp_key",
        _L + r"[a-f0-9]{32}-us[0-9]{1,2}" + _R,
        "-us",
        trig=(r"-(?=us[0-9])",),
    ),
    _f("twilio_key", _L + r"SK[0-9a-fA-F]{32}" + _R, "SK", trig=(r"k(?<=sk)[0-9a-f]{32}",), random=True),
    _f("shippo_token", _L + r"shippo_(?:live|test)_[a-fA-F0-9]{40}" + _R, "shippo_"),
    _f("duffel_token", _L + r"duffel_(?:test|live)_[A-Za-z0-9_=-]{43}" + _RD, "duffel_"),
    _f("easypost_key", _L + r"EZ[AT]K[A-Za-z0-9]{54}" + _R, ("EZAK", "EZTK")),
    _f(
        "flutterwave_key",
        _L + r"FLW(?:SECK|PUBK)_TEST-?[a-hA-H0-9]{12,32}(?:-X)?" + _R,
        ("FLWSECK_TEST", "FLWPUBK_TEST"),
    ),
    _f("postman_key", _L + r"PMAK-[a-f0-9]{24}-[a-f0-9]{34}" + _R, "PMAK-"),
    _f("mapbox_token", _L + r"[pst]k\.eyJ[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{16,}" + _RD, "k.eyJ"),
    _f("dropbox_token", _L + r"sl\.[A-Za-z0-9_=-]{120,}" + _RD, "sl.", trig=(r"\.(?=[a-z0-9_=-]{120})(?<=sl\.)",)),
    _f("twitter_token", _L + r"A{20,24}[A-Za-z0-9%]{60,}" + _R, "AAAAAAAAAAAAAAAAAAAA"),
    _f("linear_key", _L + r"lin_(?:api|oauth)_[A-Za-z0-9]{40}" + _R, ("lin_api_", "lin_oauth_")),
    _f("notion_token", _L + r"ntn_[0-9]{11}[A-Za-z0-9]{35}" + _R, "ntn_"),
    _f("notion_token", _L + r"secret_[A-Za-z0-9]{43}" + _R, "secret_", random=True),
    _f("contentful_token", _L + r"CFPAT-[A-Za-z0-9_-]{43}" + _RD, "CFPAT-"),
    _f("typeform_token", _L + r"tfp_[A-Za-z0-9_.=-]{59}" + _R, "tfp_"),
    _f("frameio_token", _L + r"fio-u-[A-Za-z0-9_=-]{64}" + _RD, "fio-u-"),
    _f("adobe_secret", _L + r"p8e-[A-Za-z0-9]{32}" + _R, "p8e-", random=True),
    _f("octopus_key", _L + r"API-[A-Z0-9]{26}" + _R, "API-", trig=(r"-(?=[a-z0-9]{26})(?<=api-)",), random=True),
    _f("intra42_secret", _L + r"s-s4t2(?:ud|af)-[a-f0-9]{64}" + _R, "s-s4t2"),
    _f("settlemint_token", _L + r"sm_(?:pat|aat|sat)_[A-Za-z0-9]{16}" + _R, ("sm_pat_", "sm_aat_", "sm_sat_")),
    _f("maxmind_key", _L + r"[A-Za-z0-9]{6}_[A-Za-z0-9]{29}_mmk" + _R, "_mmk"),
    _f("yandex_key", _L + r"(?:AQVN[A-Za-z0-9_-]{35,38}|y0_[A-Za-z0-9_-]{50,})" + _RD, ("AQVN", "y0_"), random=True),
    _f("onepassword_token", _L + r"ops_eyJ" + _B64 + r"{100,}={0,3}", "ops_eyJ"),
    _f(
        "onepassword_key",
        _L + r"A3-[A-Z0-9]{6}-(?:[A-Z0-9]{11}|[A-Z0-9]{6}-[A-Z0-9]{5})-[A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{5}" + _R,
        "A3-",
        trig=(r"3(?<=a3)-[a-z0-9]{6}-",),
    ),
    _f("age_key", _L + r"AGE-SECRET-KEY-1[0-9A-Z]{58}" + _R, "AGE-SECRET-KEY-1"),
    _f(
        "airtable_token",
        _L + r"pat[A-Za-z0-9]{14}\.[a-f0-9]{64}" + _R,
        "pat",
        trig=(r"\.(?=[a-f0-9]{64})(?<=pat[a-z0-9]{14}\.)",),
    ),
    # --- generic shapes that name themselves
    _f("jwt", _L + r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*", "eyJ"),
    _f("private_key", _L + r"LS0tLS1CRUdJTi" + _B64 + r"{20,}={0,2}", "LS0tLS1CRUdJTi"),  # base64 of a PEM block
)
