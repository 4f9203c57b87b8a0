"""The mail intake on the seeded corpus (``include/gitlab_mails.py``): every GitLab version since 11.x,
every class of mail issue 19 names, one test per mail. A case passes when ``classify_mail`` takes the
labelled decision (accept / ignore / reject and the named reason) and, for a mail to accept, returns
the right fields (status, pipeline and project ids, project path, ref, SHA, every failed job)."""

from __future__ import annotations

import email
import re
import time
from collections import Counter

import pytest

from devops_automation.workflows.ci_failure_triage.mail import IGNORED, KINDS, classify_mail, parse_pipeline_mail
from include import gitlab_mails as gm

SEED = 20260519
CASES = gm.corpus(SEED, huge_mb=5.0)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_corpus_case(case: gm.Case) -> None:
    start = time.perf_counter()
    decision = classify_mail(case.raw, allowed_senders=gm.ALLOWED_SENDERS)
    elapsed = time.perf_counter() - start
    right, fields_right, detail = gm.check(case, decision)
    assert right, detail
    assert fields_right is not False, detail
    assert decision.message_id  # every decision names its message
    assert elapsed < (3.0 if case.cls == "huge_trace" else 1.0), f"{case.name}: {elapsed:.2f} s"


def test_the_corpus_covers_every_class_and_version() -> None:
    classes = Counter(c.cls for c in CASES)
    issue_classes = {  # issue 19, in its order
        "trace_blocks",  # GitLab < 13.2: "Your pipeline has failed.", had N failed builds, /raw links, Trace:
        "huge_trace",  # a 5 MB mail must keep all 3 jobs
        "html_only",  # group link first in the Project row, jobs as name links
        "other_pipeline_urls",  # a commit message / trace line naming another pipeline
        "safe_links",  # link rewriting + [EXTERNAL]
        "running_header",  # "Failed pipeline" with X-GitLab-Pipeline-Status: running
        "external_status",  # Build #<id>
        "ref_mismatch",
        "sha_mismatch",
        "two_senders",
        "reply_via_list",
        "issue_notification",
    }
    assert issue_classes <= set(classes)
    assert all(classes[c] >= 1 for c in gm.CLASSES)
    assert {c.version for c in CASES} == {v.name for v in gm.VERSIONS}
    accepted = {(c.version, c.cls) for c in CASES if c.expect.action == "accept"}
    for v in gm.VERSIONS:  # every version: text+HTML, text-only and HTML-only mails are accepted
        assert {(v.name, "genuine"), (v.name, "text_only"), (v.name, "html_only")} <= accepted, v.name
    eras = {(v.subject, v.body) for v in gm.VERSIONS}
    assert {"oldest", "intermediate", "current"} == {s for s, _ in eras}
    assert {"old", "new"} == {b for _, b in eras}
    reasons = {(c.expect.action, c.expect.reason) for c in CASES}
    assert {("reject", k) for k in KINDS} <= reasons
    assert {("ignore", k) for k in IGNORED} <= reasons
    assert max(len(c.raw) for c in CASES if c.cls == "huge_trace") > 5_000_000


def test_the_corpus_is_seeded() -> None:
    again = gm.corpus(SEED, classes=("genuine", "reply_via_list"), huge_mb=0)
    first = [c for c in CASES if c.cls in ("genuine", "reply_via_list")]
    assert [c.raw for c in again] == [c.raw for c in first]
    other = gm.corpus(SEED + 1, classes=("genuine",), huge_mb=0)
    assert [c.raw for c in other] != [c.raw for c in first if c.cls == "genuine"]


def test_the_generator_renders_each_era() -> None:
    """The facts the corpus stands on (gitlab.md §1.1b), so a change in the generator shows here."""
    raws = {c.version: c.raw for c in CASES if c.cls == "text_only"}
    old, new = (email.message_from_bytes(raws[v]).get_payload(decode=True) for v in ("12.10", "17.8"))
    assert old.lstrip().startswith(b"Your pipeline has failed.\n") and b"failed build" in old and b"/raw )" in old
    assert b"\nTo:" not in raws["12.10"]  # Bcc: no To header
    assert re.match(rb"Pipeline .+ has failed!\n", new) and b"failed job" in new and b"/raw" not in new
    subjects = {c.version: parse_pipeline_mail(c.raw).subject for c in CASES if c.cls == "genuine"}
    assert "| Pipeline #" in subjects["11.0"] and " has failed for " in subjects["11.0"]
    assert subjects["13.2"].startswith("Failed pipeline for ")
    assert " | Failed pipeline for " in subjects["17.8"]
    html_only = next(c for c in CASES if c.name == "html_only-15.11-0")
    (part,) = email.message_from_bytes(html_only.raw).walk()  # one part: no text/plain
    assert part.get_content_type() == "text/html"
    assert b'class="build-state"' in part.get_payload(decode=True)
