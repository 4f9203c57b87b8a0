"""Error signals: which lines of a CI log say that something went wrong, how strongly, and what kind
of failure they point to.

Signals are families of regular expressions that generalise across build tools (Maven, Gradle, npm,
yarn, pip/pytest, go, cargo, gcc/clang, javac, make, docker, git, the CI runners themselves), not
strings from particular projects. Each family has a weight (how sure we are that the line reports an
error), a category (used by the classifier) and whether it suggests a transient cause.

Speed matters (a 50 MB log must take well under two seconds) and Python's ``re`` is slow at
searching many alternatives case-insensitively, so:

* :func:`candidate_lines` finds lines containing one of :data:`KEYWORDS` in a whole lowercased batch,
  one regular expression per first letter (each scans at C speed for a single literal character);
* only those lines are scored by :func:`score_line`: one combined regular expression (families in
  order of weight, written in lower case and run on the lowercased line) plus a few case-sensitive
  patterns.

Every family pattern must contain one of the keywords, otherwise the prefilter would hide its lines
(a unit test checks a sample line of each family).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

CATEGORIES = (
    "compile_error",
    "test_failure",
    "dependency",
    "infrastructure",
    "timeout",
    "configuration",
    "lint",
    "permission",
    "unknown",
)

#: The prefilter: a line is scored only if its lowercased text contains one of these. They are
#: grouped by a (mostly rare) first character, so that each group is one fast regular-expression
#: pass: "e" + "rr" finds "error", "stderr", "ERR!"; "n" + "ot " finds "cannot", "does not exist".
KEYWORD_GROUPS: dict[str, tuple[str, ...]] = {
    "e": ("rr",),  # error, stderr, ERR!, ##[error]
    "x": ("ception", "it", "ceeded", "pected"),  # exception, exit, exceeded, (un)expected
    # cannot, not found, does not exist, no such file, no space, denied, credentials, invalid,
    # canceled, panic:, panicked
    "n": (
        "ot ",
        "o such",
        "o space",
        "o module",
        "o route",
        "o rakefile",
        "on-zero",
        "ied",
        "tials",
        "valid",
        "celed",
        "celled",
        "ic:",
        "icked",
    ),
    "u": (
        "navailable",
        "nauthori",
        "ndefined",
        "nresolved",
        "nknown",
        "nrecognized",
        "nsupported",
        "nreachable",
        "nable to",
        "bious",  # Perl's prove: "Dubious, test returned 1"
        "ncommitted",
        "sage: ",  # usage: …
    ),
    "f": (
        "ail",
        "atal",
        "orbidden",
        " memory",
        "fline",
        "used",
        "ormat ",
        "ormatted",
        "ense",  # rubocop's "offenses detected"
        " --git",  # diff --git (a diff-based check)
        "iles were",
        "iles have been",
    ),  # fail, fatal, out of memory, refused, reformat
    "m": (
        "issing",
        "ped",
        "eout",
        "ed out",
        "edout",
        "any requests",
        "anyrequests",
        "it the changes",  # "… and commit the changes"
    ),  # missing, dumped, timeout, too many requests
    "k": ("ill", " (most recent"),  # killed, SIGKILL, Traceback (most recent call last)
    # Erlang/Elixir: "** (CompileError) …", "** gen_event handler … crashed", "** exception error: …"
    "*": ("* (", "* gen_", "* exception", "* reason"),
}
#: Lines starting with these (TeX's "! Undefined control sequence.") are candidates too; they are
#: searched as "\n" + prefix (a literal is fast in ``re``; ``^`` is not).
LINE_START_KEYWORDS: tuple[str, ...] = ("! ",)
KEYWORDS: tuple[str, ...] = tuple(first + rest for first, rests in KEYWORD_GROUPS.items() for rest in rests)
# Patterns on bytes: ``bytes.lower()`` folds ASCII only and is ~20x faster than ``str.lower()`` on
# text with a few non-ASCII characters; line breaks keep their positions in the UTF-8 encoding.
_PREFILTERS: list[re.Pattern[bytes]] = []  # filled below, once _trie_pattern is defined
_LINE_START_PREFILTERS: list[re.Pattern[bytes]] = [
    re.compile(re.escape(("\n" + k).encode())) for k in LINE_START_KEYWORDS
]


def lower_bytes(text: str) -> bytes:
    """The text as UTF-8 with ASCII letters lowercased (what :func:`candidate_lines` scans)."""
    return text.encode("utf-8", errors="replace").lower()


def candidate_lines(low: bytes) -> list[int]:
    """Indices of the lines (separated by ``\\n``) of a batch (as :func:`lower_bytes`) that contain a keyword."""
    positions: list[int] = []
    for rx in _PREFILTERS:
        positions += [m.start() for m in rx.finditer(low)]
    for rx in _LINE_START_PREFILTERS:
        positions += [m.start() + 1 for m in rx.finditer(low)]
        if low.startswith(rx.pattern[1:]):
            positions.append(0)
    if not positions:
        return []
    positions.sort()
    out: list[int] = []
    count = low.count
    find = low.find
    idx = 0
    pos = 0
    line_end = -1
    for p in positions:
        if p <= line_end:
            continue
        idx += count(b"\n", pos, p)
        pos = p
        out.append(idx)
        line_end = find(b"\n", p)
        if line_end < 0:
            break
    return out


def is_candidate(line: str) -> bool:
    """Whether a single line passes the keyword prefilter."""
    low = lower_bytes(line)
    return any(rx.search(low) for rx in _PREFILTERS) or low.startswith(tuple(k.encode() for k in LINE_START_KEYWORDS))


@dataclass(frozen=True)
class Family:
    """One family of error lines (``pattern`` is matched against the lowercased line unless ``cased``)."""

    name: str
    category: str | None  # None: says "error" but not what kind
    weight: float
    transient: bool
    pattern: str
    triggers: tuple[str, ...]  # lowercase literals: the pattern can only match if one of them occurs
    cased: bool = False
    start: str = ""  # an extra pattern matched at the start of the line only


_SRC_EXT = (
    r"(?:java|kt|kts|scala|groovy|c|cc|cpp|cxx|h|hh|hpp|m|mm|go|rs|cs|fs|vb|swift|ts|tsx|js|jsx|mjs|cjs|py|rb|php"
    r"|dart|hs|ex|exs|erl|zig|vue|svelte|sol)"
)


def _fam(
    name: str,
    category: str | None,
    weight: float,
    transient: bool,
    pattern: str,
    triggers: tuple[str, ...],
    cased: bool = False,
    start: str = "",
) -> Family:
    return Family(name, category, weight, transient, pattern, triggers, cased, start)


FAMILIES: tuple[Family, ...] = (
    # -- infrastructure: the machine, the runner, the network -------------------------------------
    _fam(
        "disk_full",
        "infrastructure",
        10,
        True,
        r"no space left on device|\benospc\b|disk quota exceeded|not enough space on the disk|insufficient disk space"
        r"|disk (?:is )?full\b",
        ("no space", "enospc", "disk quota", "not enough space", "disk space", "disk full", "disk is full"),
    ),
    _fam(
        "out_of_memory",
        "infrastructure",
        10,
        False,
        r"lang\.outofmemoryerror|outofmemoryerror:|out of memory\b|cannot allocate memory|enomem\b|oom[- ]?kill"
        r"|javascript heap out of memory|memoryerror\b|exit(?:ed)? (?:with )?(?:code|status) 137\b|killed by signal 9"
        r"|sigkill\b|gc overhead limit exceeded",
        (
            "outofmemoryerror",
            "out of memory",
            "allocate memory",
            "enomem",
            "oom",
            "exit",
            "killed",
            "sigkill",
            "gc overhead",
            "memoryerror",
        ),
        start=r"\s*killed\s*$",
    ),
    _fam(
        "runner_lost",
        "infrastructure",
        10,
        True,
        r"runner system failure|received a shutdown signal|lost communication with the server"
        r"|runner has (?:been )?(?:lost|disconnected)"
        r"|the (?:self-hosted |hosted )?runner .{0,60}?(?:lost|did not respond|shut ?down)|agent (?:went|is) offline"
        r"|channelclosedexception|remote call on .{1,80}? failed|pod .{0,80}?evicted"
        r"|cannot connect to the docker daemon|docker daemon .{0,40}?not running",
        (
            "runner",
            "shutdown signal",
            "lost communication",
            "offline",
            "channelclosed",
            "remote call on",
            "evicted",
            "docker daemon",
        ),
    ),
    _fam(
        "network",
        "infrastructure",
        9,
        True,
        r"could not resolve host|temporary failure in name resolution|name or service not known|no such host"
        r"|getaddrinfo|\benotfound\b|\beai_again\b|\beconnreset\b|\beconnrefused\b|\betimedout\b|\behostunreach\b"
        r"|connection (?:refused|reset|timed out|closed by)|network is unreachable|no route to host"
        r"|tls handshake timeout|ssl_error|unable to access '[^']*': |the requested url returned error: 5\d\d"
        r"|50[234] (?:bad gateway|service unavailable|gateway time-?out)|http(?:/[\d.]+)? (?:status )?(?:code )?5\d\d\b"
        r"|status code:? 5\d\d|i/o timeout|socket hang up|read timed out|connect timed out"
        r"|(?:unknownhost|sockettimeout|connect|noroutetohost|sslhandshake)exception|toomanyrequests"
        r"|rate limit (?:exceeded|reached)|429 too many requests|api rate limit|error pulling image"
        r"|failed to pull image",
        (
            "resolve host",
            "name resolution",
            "name or service",
            "no such host",
            "getaddrinfo",
            "enotfound",
            "eai_again",
            "econn",
            "etimedout",
            "ehostunreach",
            "connection refused",
            "connection reset",
            "connection timed out",
            "connection closed",
            "unreachable",
            "no route to host",
            "tls handshake",
            "ssl_error",
            "unable to access",
            "returned error",
            "bad gateway",
            "service unavailable",
            "gateway time",
            "http/",
            "http ",
            "http status",
            "http code",
            "status code",
            "i/o timeout",
            "socket hang up",
            "read timed out",
            "connect timed out",
            "hostexception",
            "timeoutexception",
            "connectexception",
            "handshakeexception",
            "toomanyrequests",
            "rate limit",
            "too many requests",
            "pulling image",
            "pull image",
        ),
    ),
    # -- timeouts -------------------------------------------------------------------------------------
    _fam(
        "job_timeout",
        "timeout",
        9,
        False,
        r"(?:job|build|step|stage|execution|process|command|task|action) (?:has )?(?:timed out"
        r"|exceeded (?:the )?(?:maximum )?(?:execution )?time(?:out)?)|execution took longer than"
        r"|exceeded the maximum execution time|build timed out|timed out after"
        r"|timeout (?:of \d+\w* )?(?:exceeded|expired|reached)|deadline exceeded|timeoutexception"
        r"|the operation was canceled|timeout of \d+\s*ms exceeded|test timed out|timed out waiting for",
        ("timed out", "exceeded", "took longer", "timeout", "operation was canceled"),
    ),
    # -- permissions and credentials --------------------------------------------------------------
    _fam(
        "permission",
        "permission",
        8,
        False,
        r"permission denied|eacces\b|eperm\b|operation not permitted|access (?:is )?denied|accessdenied|forbidden\b"
        r"|unauthorized\b|authentication (?:failed|required)|bad credentials|invalid credentials"
        r"|could not read username|permission to .{1,80}? denied|not authorized|insufficient (?:permissions|scope)"
        r"|resource not accessible by integration|requested access to the resource is denied|returned error: 40[13]"
        r"|http (?:status )?40[13]\b|status code:? 40[13]\b",
        (
            "denied",
            "eacces",
            "eperm",
            "not permitted",
            "forbidden",
            "unauthorized",
            "authentication",
            "credentials",
            "username",
            "not authorized",
            "insufficient",
            "not accessible",
            "returned error",
            "http",
            "status code",
        ),
    ),
    # -- dependencies ---------------------------------------------------------------------------------
    _fam(
        "dependency",
        "dependency",
        8,
        False,
        r"could not resolve (?:dependencies|all (?:files|dependencies|artifacts)|artifact|plugin|com\.|org\.|io\.)"
        r"|could not be resolved|failed to read artifact descriptor|could not find artifact|could not transfer artifact"
        r"|failed to collect dependencies|(?:plugin|dependency|artifact)resolutionexception"
        r"|non-resolvable (?:parent|import)|eresolve\b|e404\b.{0,40}?not found|code etarget"
        r"|unable to resolve dependency tree|no matching version found|peer dep(?:endency)? conflict"
        r"|modulenotfounderror|no module named|importerror\b|cannot find module|module not found|resolutionimpossible"
        r"|no matching distribution found|could not find a version that satisfies|version solving failed"
        r"|missing go\.sum entry|unknown revision|module .{1,80}? not found|failed to select a version"
        r"|lock ?file .{0,40}?(?:out of date|needs to be updated)|could not find (?:gem|com\.|org\.)"
        r"|unable to find a matching|conflicting dependencies",
        (
            "could not resolve",
            "could not be resolved",
            "artifact descriptor",
            "could not find",
            "could not transfer",
            "collect dependencies",
            "resolutionexception",
            "non-resolvable",
            "eresolve",
            "etarget",
            "dependency tree",
            "no matching",
            "peer dep",
            "modulenotfounderror",
            "no module named",
            "importerror",
            "cannot find module",
            "not found",
            "resolutionimpossible",
            "could not find a version",
            "version solving failed",
            "go.sum",
            "unknown revision",
            "failed to select",
            "lock",
            "unable to find a matching",
            "conflicting dependencies",
        ),
    ),
    # -- compilation ----------------------------------------------------------------------------------
    _fam(
        "compile_location",
        "compile_error",
        9,
        False,
        r"\."
        + _SRC_EXT
        + r"(?::\[?\d+(?:[,:]\d+)?\]?|\(\d+(?:,\d+)?\)):? .{0,40}?\b(?:error|fatal error|cannot find symbol|undefined"
        r"|incompatible types|not found|cannot|unresolved|does not exist|is not defined|has no|is missing|invalid"
        r"|illegal|duplicate)\b",
        (".",),
    ),
    _fam(
        "compile_message",
        "compile_error",
        8,
        False,
        r"compilation (?:error|failure|failed)|cannot find symbol|incompatible types:"
        r"|error(?:\[e\d{4}\]| ts\d+| cs\d+| c\d{4}\b|: could not compile|: expected)|undefined reference to"
        r"|ld returned \d+ exit status|collect2: error|fatal error: .{1,120}?: no such file|syntaxerror\b"
        r"|indentationerror|unresolved reference|could not compile `|cannot be applied to given types"
        r"|has private access|method does not override|undefined: |declared (?:and|but) not used"
        r"|no matching function for call|is not a member of|was not declared in this scope",
        (
            "compilation",
            "cannot find symbol",
            "incompatible types",
            "error[e",
            "error ts",
            "error cs",
            "error c",
            "undefined reference",
            "ld returned",
            "collect",
            "fatal error",
            "syntaxerror",
            "indentationerror",
            "unresolved reference",
            "could not compile",
            "cannot be applied",
            "private access",
            "does not override",
            "undefined: ",
            "not used",
            "error: expected",
            "no matching function",
            "is not a member",
            "not declared",
        ),
    ),
    # -- tests ----------------------------------------------------------------------------------------
    _fam(
        "test_failure",
        "test_failure",
        8,
        False,
        r"tests run: \d+, failures: (?:[1-9]|\d+, errors: [1-9])|<<< (?:failure|error)!"
        r"|there (?:(?:was|were) \d+ failures?|were failing tests|are test failures)|failed tests:|tests in error:"
        r"|tests? failed\b|[1-9]\d* (?:tests? )?(?:failed|failing)\b|--- fail:|test result: failed|panicked at"
        r"|assertionerror\b|assertionfailederror|comparisonfailure|expected:?\s*<.{0,120}?> but was:?\s*<"
        r"|failed (?:\(failures=|: [1-9]\d*,)|test .{1,120}? failed\b|failures?: [1-9]\d*\b",
        ("tests run:", "<<< ", "failure", "failed", "failing", "--- fail", "panicked at", "assertion", "but was"),
    ),
    _fam(
        "test_failure_cased",
        "test_failure",
        8,
        False,
        r"^FAILED\s+\S+::|^FAIL:? \S|^FAIL\t\S|^FAIL$|^E {2,}\S|^\s*[\w.$]+ > [^\n]{1,200} FAILED\s*$",
        ("fail", "e  "),
        cased=True,
    ),
    _fam(
        "harness_failure",
        "test_failure",
        9,
        False,
        r"test-unexpected-(?:fail|timeout|error|crash|pass|not-pass)|process-crash \||^\s*\*\*\* failed\b|^not ok \d+"
        r"|^\s*# failed test\b|^\s*fail in \(|result: fail\b|dubious, test returned [1-9]"
        r"|failed \d+/\d+ (?:subtests|test programs)|^(?:failures|errors)!\s*$|failed!\s+- failed:\s+[1-9]"
        r"|^test suite \S+: fail\b|^\s*failed: [1-9]\d*\.",
        (
            "test-unexpected",
            "process-crash",
            "failed",
            "not ok",
            "fail in",
            "result: fail",
            "dubious",
            "failures!",
            "errors!",
            "test suite",
        ),
    ),
    _fam(
        "test_summary",
        "test_failure",
        8,
        False,
        r"\b\d+ (?:examples?|tests?|runs?|successe?s?|specs?)(?: / |, )(?:\d+ \w+, )?[1-9]\d* failures?\b"
        r"|\b[1-9]\d* failures?, \d+ errors?\b|\bwith [1-9]\d* failures?\b",
        ("failure",),
    ),
    _fam(
        "beam_error",
        None,
        8,
        False,
        r"^\s*\*\* \([\w.]+\)|^=(?:error|crash|supervisor) report=+|^\s*\*\* (?:gen_\w+ handler .{1,160}? crashed"
        r"|exception (?:error|exit|throw)|reason for termination)",
        ("* (", "error report", "crash report", "supervisor report", "crashed", "* exception", "reason for"),
    ),
    _fam(
        "tex",
        "compile_error",
        8,
        False,
        r"^! (?:undefined control sequence|latex error|package \S+ error|missing|emergency stop|too many|extra"
        r"|misplaced|paragraph ended|file ended|i can't|font|interruption|undefined|you can't|illegal|double"
        r"|display math|bad|argument of|text line contains)",
        ("! ",),
    ),
    _fam(
        "r_check",
        "test_failure",
        8,
        False,
        r"^status: [1-9]\d* errors?\b|^\* checking .{1,160} \.\.\. error\s*$",
        ("status: ", "checking"),
    ),
    _fam("usage", "configuration", 4, False, r"^usage: \S", ("usage: ",)),
    # -- configuration --------------------------------------------------------------------------------
    _fam(
        "configuration",
        "configuration",
        7,
        False,
        r"(?:invalid|unknown|unrecognized|unsupported|missing) (?:option|argument|parameter|configuration|config"
        r"|property|key|flag|input|value for)\b|yamlexception|yaml: line \d+|mapping values are not allowed"
        r"|is not recognized as an internal or external command|command not found|: not found$|unknown lifecycle phase"
        r"|could not find or load main class|invalid reference format|unsupportedclassversionerror"
        r"|unsupported class file major version|release version \d+ not supported|invalid (?:target|source) release"
        r"|unrecognized vm option|unsafe repository|detected dubious ownership"
        r"|environment variable .{1,60}? (?:is )?(?:not set|not defined|required|missing)|missing required"
        r"|no such file or directory|does not exist\b|unable to locate|unable to create root module|is not a valid"
        r"|unknown command|invalid syntax|the (?:goal|plugin) you specified requires a project"
        r"|no plugin found for prefix|could not find (?:a )?(?:file|directory|gradle wrapper|pom)"
        r"|flag provided but not defined|no rakefile found",
        (
            "invalid ",
            "unknown ",
            "unrecognized ",
            "unsupported",
            "missing ",
            "yamlexception",
            "yaml: line",
            "mapping values",
            "not recognized",
            "not found",
            "lifecycle phase",
            "main class",
            "reference format",
            "class file major",
            "not supported",
            "vm option",
            "unsafe repository",
            "dubious ownership",
            "environment variable",
            "no such file",
            "does not exist",
            "unable to locate",
            "root module",
            "is not a valid",
            "requires a project",
            "no plugin found",
            "could not find",
            "flag provided",
            "no rakefile",
        ),
    ),
    # -- lint / static analysis -----------------------------------------------------------------------
    _fam(
        "lint",
        "lint",
        7,
        False,
        r"(?:checkstyle|ktlint|eslint|tslint|stylelint|flake8|pylint|ruff|rubocop|golangci-lint|govet|spotless|prettier"
        r"|black|isort|mypy|clang-format|clang-tidy|shellcheck|detekt|pmd|spotbugs|findbugs|hadolint|markdownlint"
        r"|yamllint|rustfmt|clippy|scalafmt|animal-sniffer|revapi|japicmp)\b.{0,160}?\b(?:error|errors|failed|failure"
        r"|violations?|problems?|would reformat|issues? found)\b|would reformat\b"
        r"|\d+ (?:checkstyle|pmd|spotbugs|lint) violations?|\u2716 \d+ problems?|\d+ problems? \(\d+ errors?"
        r"|signature errors found|undefined reference: |format(?:ting)? check failed|violations? (?:found|detected)"
        r"|lint (?:found|errors)|code style issues found|files? would be reformatted|\(severity: [1-5]\)"
        r"|\d+ offenses? detected",
        (
            "checkstyle",
            "ktlint",
            "eslint",
            "tslint",
            "stylelint",
            "flake",
            "pylint",
            "ruff",
            "rubocop",
            "golangci",
            "govet",
            "spotless",
            "prettier",
            "black",
            "isort",
            "mypy",
            "clang-",
            "shellcheck",
            "detekt",
            "pmd",
            "spotbugs",
            "findbugs",
            "hadolint",
            "markdownlint",
            "yamllint",
            "rustfmt",
            "clippy",
            "scalafmt",
            "animal-sniffer",
            "revapi",
            "japicmp",
            "would reformat",
            "violation",
            "problem",
            "signature errors",
            "undefined reference: ",
            "check failed",
            "lint ",
            "code style",
            "reformatted",
            "severity: ",
            "offense",
        ),
    ),
    _fam(
        "diff_check",
        "lint",
        7,
        False,
        r"please (?:re-?run|rebuild|regenerate|run|update|format)\b.{0,160}?\bcommit|uncommitted changes"
        r"|changes not staged for commit|files? (?:were|have been) (?:modified|changed|reformatted)|^diff --git a/"
        r"|git diff --exit-code|the following files? (?:are|were|is|was) (?:not formatted|out of date|modified)",
        (
            "commit",
            "not staged",
            "files were",
            "file were",
            "files have",
            "file have",
            "diff --git",
            "exit-code",
            "following file",
        ),
    ),
    # -- generic: says it failed, not why -------------------------------------------------------------
    _fam(
        "process_exit",
        None,
        6,
        False,
        r"exit(?:ed)? (?:with )?(?:code|status):? [1-9]\d*"
        r"|returned (?:status code |exit code |non-zero exit status |a non-zero code: )?[1-9]\d*:?$|non-zero exit"
        r"|process completed with exit code [1-9]|job failed: exit code|command failed|exit status [1-9]"
        r"|error code [1-9]|make(?:\[\d+\])?: \*\*\*|errno\b",
        ("exit", "returned", "non-zero", "command failed", "error code", "***", "errno"),
    ),
    _fam(
        "build_failed",
        None,
        8,
        False,
        r"build failed|build failure|> task \S+ failed|failed to execute goal|execution failed for task"
        r"|what went wrong:|failure: build|marked build as failure|finished: (?:failure|aborted|unstable)"
        r"|error: job failed|##\[error\]|error: process completed|npm err!|error command failed\b|code elifecycle"
        r"|the command .{1,200}? returned a non-zero|task .{1,80}? failed|step .{1,80}? failed"
        r"|failed to (?:build|solve|compute cache key|execute|run|start|create|load|open|write|read|connect|download"
        r"|fetch|install|checkout|clone|deploy|publish|push|upload)\b",
        (
            "build failed",
            "build failure",
            "> task",
            "failed to",
            "execution failed",
            "what went wrong",
            "failure: build",
            "marked build as failure",
            "finished: ",
            "job failed",
            "##[error]",
            "process completed",
            "npm err!",
            "command failed",
            "code elifecycle",
            "non-zero",
            "task ",
            "step ",
        ),
    ),
    _fam(
        "exception",
        None,
        6,
        False,
        r"panic: |segmentation fault|core dumped|sigsegv|sigabrt|unhandled (?:exception|rejection)|fatal error"
        r"|stack overflow",
        (
            "exception",
            "error",
            "traceback",
            "caused",
            "suppressed:",
            "panic: ",
            "segmentation fault",
            "core dumped",
            "sigsegv",
            "sigabrt",
            "unhandled",
            "stack overflow",
            "fatal error",
        ),
        start=r"\s*(?:exception in thread|traceback \(most recent call last\)|caused by:|caused:|suppressed:"
        r"|(?:[\w$]+\.)+[\w$]*(?:exception|error)\b(?::|$)|[\w$]*(?:exception|error): )",
    ),
    _fam("fatal", None, 6, False, r"fatal|panic|abort(?:ing|ed)\b", ("fatal", "panic", "abort")),
    _fam("error_word", None, 4, False, r"\berror\b|\berr!|\bfailed\b|\bfailure\b|\bfail\b", ("error", "err!", "fail")),
    _fam(
        "soft",
        None,
        2,
        False,
        r"\bcannot\b|\bcan't\b|\bcould not\b|\bcouldn't\b|\bunable to\b|\bnot found\b|\bdenied\b|\brefused\b"
        r"|\binvalid\b|\bmissing\b|\bunexpected\b|\bwent wrong\b|\bexception\b|\bunresolved\b|\bnot a valid\b",
        (
            "cannot",
            "can't",
            "could not",
            "couldn't",
            "unable to",
            "not found",
            "denied",
            "refused",
            "invalid",
            "missing",
            "unexpected",
            "went wrong",
            "exception",
            "unresolved",
            "not a valid",
        ),
    ),
)

_COMPILED: dict[str, re.Pattern[str]] = {f.name: re.compile(f.pattern, re.M) for f in FAMILIES}
_STARTS: dict[str, re.Pattern[str]] = {f.name: re.compile(f.start) for f in FAMILIES if f.start}


def _family_matches(fam: Family, line: str, low: str) -> bool:
    text = line if fam.cased else low
    if _COMPILED[fam.name].search(text):
        return True
    start = _STARTS.get(fam.name)
    return bool(start and start.match(text))


def _trie_pattern(words: list[str]) -> str:
    """A regular expression matching any of ``words``, factored as a trie (much faster in ``re``)."""
    root: dict[str, dict] = {}
    for w in words:
        node = root
        for ch in w:
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: dict[str, dict]) -> str:
        alts = [re.escape(ch) + build(sub) for ch, sub in sorted(node.items()) if ch]
        if not alts:
            return ""
        body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
        return f"(?:{body})?" if "" in node else body  # greedy: the longest trigger wins

    return build(root)


_PREFILTERS.extend(
    re.compile((re.escape(first) + "(?:" + _trie_pattern(list(rests)) + ")").encode())
    for first, rests in KEYWORD_GROUPS.items()
)


def _trigger_index() -> tuple[re.Pattern[str], dict[str, frozenset[int]]]:
    words = sorted({t for f in FAMILIES for t in f.triggers})
    families: dict[str, set[int]] = {w: set() for w in words}
    for i, f in enumerate(FAMILIES):
        for t in f.triggers:
            families[t].add(i)
    # a match reports the longest trigger at its position; it implies every trigger that is a prefix of it
    implied = {w: frozenset(set().union(*(families[v] for v in words if w.startswith(v)))) for w in words}
    return re.compile("(?=(" + _trie_pattern(words) + "))"), implied


_TRIGGER_RX, _TRIGGER_FAMILIES = _trigger_index()
assert not any(c.isdigit() for t in _TRIGGER_FAMILIES for c in t), (
    "triggers must not contain digits (see _possible_families)"
)


#: Lines that say "error" but are not (summaries of zero failures, flags, option names ...).
_NOT_AN_ERROR = (
    "failures: 0, errors: 0",
    "build success",
    "-werror",
    "continue-on-error",
    "fail-fast",
    "errorprone",
    "error_prone",
    "error-prone",
    "onerror=",
    "ignorefailures",
    "allow_failure",
    "set -e",
    "if-no-files-found",
    "fail-on-",
    "failonerror",
    "testfailureignore",
    "errors=0",
    "failures=0",
    "no errors",
    "without error",
    "errors: 0",
    "failures: 0",
    "0 errors",
    "0 failures",
    "0 failed",
    "0 problems",
    "failed: 0",
)
_NONZERO = re.compile(r"\b[1-9]\d* (?:errors?|failures?|failed|problems?)\b|(?:errors?|failures?|failed): [1-9]")

#: Tool boilerplate printed around real errors (help text, hints). Kept as context only.
_BARE = frozenset({"", "[error]", "[err]", "error", "error:", "npm err!", "e", "err!"})
_BOILERPLATE_LITERALS = (
    "to see the full stack trace of the errors",
    "re-run maven using the -x switch",
    "for more information about the errors and possible solutions",
    "[help ",
    "after correcting the problems, you can resume the build",
    "mvn <goals> -rf",
    "mvn <args> -rf",
    "* try:",
    "run with --stacktrace",
    "run with --info",
    "run with --debug",
    "run with --scan",
    "get more help at",
    "actionable task",
    "a complete log of this run can be found in",
    "this is probably not a problem with npm",
    "recompile with -xlint",
    "common frames omitted",
    "see the dump file",
    "for the individual test results",
)
_HELP_REF = re.compile(r"^\s*(?:\[error\]\s*)?(?:-> )?\[help \d+\]")
_MORE_FRAMES = re.compile(r"^\s*\.\.\. \d+ more\s*$")


def is_boilerplate(line: str, low: str | None = None) -> bool:
    """Tool help text around errors ("re-run Maven with -e", "* Try:", "[Help 1] http…", "... 12 more")."""
    low = line.lower() if low is None else low
    stripped = low.strip()
    if stripped in _BARE:
        return True
    if "[help " in low:
        return bool(_HELP_REF.match(low)) and (low.rstrip().endswith("]") or "http" in low)
    if " more" in low and _MORE_FRAMES.match(low):
        return True
    return any(map(low.__contains__, _BOILERPLATE_LITERALS))


#: A stack frame (Java/Kotlin/Scala, JavaScript, Python, Go, Rust, .NET).
FRAME = re.compile(
    r"^\s+at [\w$.<>/\\\[\]-]+(?:\s?\(.*\))?\s*$"  # Java "\tat a.b.C.m(C.java:12)", JS "    at fn (file.js:1:2)"
    r"|^\s*(?:\t|\s{2,})at .{1,300}:\d+(?::\d+)?\)?\s*$"
    r"|^\s+File \".*\", line \d+"  # Python
    r"|^\s+\S+\.go:\d+ \+0x[0-9a-f]+$|^\s*\d+: 0x[0-9a-f]+ - |^\s+at \S+ in \S+:line \d+"  # Go, Rust, .NET
)

_STRONG_CATEGORIES = ("infrastructure", "timeout")
#: Families whose lines are failures whatever log level the harness printed them at
#: (mozharness logs "INFO - TEST-UNEXPECTED-FAIL | …").
_LEVEL_BLIND = frozenset({"build_failed", "harness_failure"})
#: An explicit low log level near the start of the line ("[INFO] …", "12:00:01 [main] INFO x.Y - …").
_LOW_LEVEL = re.compile(r"^.{0,60}?(?:\[(?:info|debug|trace)\]|\b(?:info|debug|trace)\b[ :\]-])")


def _is_warning(low: str) -> bool:
    head = low.lstrip()[:10]
    return head.startswith(("[warn", "warn", "w: ")) or "warning:" in low


@dataclass(frozen=True)
class Score:
    """How much a line looks like an error."""

    value: float
    family: str | None
    category: str | None
    transient: bool
    categories: tuple[str, ...] = ()


NO_SCORE = Score(0.0, None, None, False)


def matching_families(line: str, low: str | None = None) -> list[Family]:
    """The families that match a cleaned line, heaviest first.

    A family's regular expression runs only if one of its trigger literals occurs in the line (all
    triggers are found in one pass of a trie-shaped expression), so a line costs a few searches.
    """
    if low is None:
        low = line.lower()
    found = [FAMILIES[i] for i in _possible_families(low.translate(_DIGITS)) if _family_matches(FAMILIES[i], line, low)]
    return sorted(found, key=lambda f: -f.weight)


_DIGITS = str.maketrans("123456789", "000000000")


@lru_cache(maxsize=32768)
def _possible_families(masked: str) -> frozenset[int]:
    """Families whose triggers occur in a lowercased line (digits masked: no trigger has digits, and
    lines that differ only in numbers share the entry)."""
    possible: set[int] = set()
    for word in set(_TRIGGER_RX.findall(masked)):
        possible |= _TRIGGER_FAMILIES[word]
    return frozenset(possible)


@lru_cache(maxsize=32768)
def score_line(line: str) -> Score:
    """Score one cleaned line.

    The value is the weight of the strongest matching family plus 0.5 for each other matching family
    (at most 1.5). Stack frames score 0; tool boilerplate and "0 errors" summaries almost 0;
    warnings and explicit INFO/DEBUG lines are damped unless they report an infrastructure problem
    or a timeout. The category is the one of the strongest family that has a category.
    """
    if len(line) > 2000:
        line = line[:1000] + line[-1000:]
    low = line.lower()
    if not low.strip() or FRAME.search(line):
        return NO_SCORE
    matched = matching_families(line, low)
    if not matched:
        return NO_SCORE
    best = matched[0]
    value = best.weight + min(0.5 * (len(matched) - 1), 1.5)
    typed = [f for f in matched if f.category]
    top = typed[0] if typed else None
    category = top.category if top else None
    strong = category in _STRONG_CATEGORIES
    if is_boilerplate(line, low):
        value = min(value, 1.0)
    elif (
        not strong
        and any(map(low.__contains__, _NOT_AN_ERROR))
        and not _NONZERO.search(low)
        and not ("-werror=" in low or "due to -werror" in low)  # "error: … [-Werror=unused]": a real error
    ):
        value = min(value, 0.5)
    elif not strong and _is_warning(low):
        value *= 0.4
    elif not strong and best.name not in _LEVEL_BLIND and _LOW_LEVEL.search(low):
        value *= 0.5
    stripped = low.strip()
    if (
        stripped.endswith(":") and len(stripped) < 60
    ):  # a header ("COMPILATION ERROR :", "Traceback …:"): the message follows
        value *= 0.8
    cats = tuple(dict.fromkeys(f.category for f in typed if f.category))
    return Score(value, best.name, category, bool(top and top.transient), cats)
