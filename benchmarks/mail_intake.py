"""GitLab pipeline e-mail intake: the decision accuracy of ``classify_mail`` on the seeded corpus of
every GitLab version's mails and what gateways, lists and people do to them (``include/gitlab_mails.py``).

    .venv/bin/python benchmarks/mail_intake.py [--seed N] [--per-class 1] [--huge-mb 5] [--verbose]

Each case is labelled with the decision it must get (accept / ignore / reject and the named reason).
For the mails to accept, the fields must be right too: status, pipeline id, project id and path, ref,
short SHA, every failed job (id, name, stage, job or external status), the status header and whether
the X-GitLab-* headers were there. The table gives, per class of mail, the cases, the decisions and
fields that were right and the parse time; then per GitLab version; then the biggest mails (traces of
``--huge-mb`` MB). Exits 1 unless every decision and every field is right.

Ends with one ``key=value`` summary line (DEVELOPERS.md benchmark rule).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def _imports() -> tuple[Any, Any]:
    sys.path[:0] = [str(REPO), str(REPO / "plugins")]
    import include.gitlab_mails as corpus_module
    from devops_automation.workflows.ci_failure_triage.mail import classify_mail

    return corpus_module, classify_mail


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=20260519)
    ap.add_argument("--per-class", type=int, default=1, help="cases per class and GitLab version")
    ap.add_argument("--huge-mb", type=float, default=5.0, help="size of the huge-trace mails (0: none)")
    ap.add_argument("--verbose", action="store_true", help="print every case that was decided wrong")
    args = ap.parse_args(argv)
    gm, classify_mail = _imports()

    start = time.perf_counter()
    cases = gm.corpus(
        args.seed, per_class=args.per_class, huge_mb=args.huge_mb, huge_versions=2 if args.huge_mb > 0 else 0
    )
    built_s = time.perf_counter() - start
    rows: dict[str, list[tuple[bool, bool | None, float]]] = defaultdict(list)
    versions: dict[str, list[tuple[bool, bool | None, float]]] = defaultdict(list)
    wrong: list[str] = []
    huge: list[tuple[int, float, int]] = []
    for case in cases:
        t0 = time.perf_counter()
        decision = classify_mail(case.raw, allowed_senders=gm.ALLOWED_SENDERS)
        ms = (time.perf_counter() - t0) * 1000
        right, fields_right, detail = gm.check(case, decision)
        rows[case.cls].append((right, fields_right, ms))
        versions[case.version].append((right, fields_right, ms))
        if not (right and fields_right is not False):
            wrong.append(f"{case.name}: {detail}")
        if case.cls == "huge_trace":
            huge.append((len(case.raw), ms, len(decision.mail.failed_jobs) if decision.mail else 0))

    def line(label: str, results: list[tuple[bool, bool | None, float]], expect: str = "") -> str:
        n = len(results)
        decided = sum(r for r, _, _ in results)
        to_check = [f for _, f, _ in results if f is not None]
        fields = f"{sum(to_check)}/{len(to_check)}" if to_check else "-"
        times = [ms for _, _, ms in results]
        return (
            f"{label:<22} {expect:<30} {n:>5} {decided:>5}/{n:<5} {fields:>9} "
            f"{statistics.median(times):>8.2f} {max(times):>8.1f}"
        )

    columns = f"{'cases':>5} {'decided':>11} {'fields':>9} {'p50 ms':>8} {'max ms':>8}"
    header = f"{'class':<22} {'expected decision':<30} {columns}"
    print(header)
    print("-" * len(header))
    labels: dict[str, set[str]] = defaultdict(set)
    for c in cases:
        labels[c.cls].add(f"{c.expect.action} {c.expect.reason}")
    expected = {cls: " | ".join(sorted(v)).replace(" | reject ", " | ") for cls, v in labels.items()}
    for cls in gm.CLASSES:
        if rows.get(cls):
            print(line(cls, rows[cls], expected[cls]))
    print()
    print(f"{'GitLab version':<22} {'eras':<30} {columns}")
    for v in gm.VERSIONS:
        if versions.get(v.name):
            era = f"{v.subject} subject, {v.body} body"
            print(line(v.name, versions[v.name], era))
    all_results = [r for rs in rows.values() for r in rs]
    print()
    print(line("all", all_results))
    for size, ms, jobs in huge:
        print(f"huge trace mail: {size / 1e6:.1f} MB parsed in {ms:.0f} ms, {jobs} of 3 jobs kept")
    if wrong:
        print(f"\n{len(wrong)} case(s) wrong:")
        for w in wrong if args.verbose else wrong[:10]:
            print("  " + w)

    n = len(all_results)
    decision_accuracy = sum(r for r, _, _ in all_results) / n if n else 0.0
    checked = [f for _, f, _ in all_results if f is not None]
    field_accuracy = sum(checked) / len(checked) if checked else 0.0
    times = [ms for _, _, ms in all_results]
    huge_mb = max((s for s, _, _ in huge), default=0) / 1e6
    huge_ms = max((ms for _, ms, _ in huge), default=0.0)
    print(
        f"cases={n} classes={len(rows)} versions={len(versions)} decision_accuracy={decision_accuracy:.4f} "
        f"field_accuracy={field_accuracy:.4f} p50_ms={statistics.median(times):.2f} huge_mb={huge_mb:.1f} "
        f"huge_ms={huge_ms:.0f} build_s={built_s:.2f}"
    )
    return 0 if not wrong else 1


if __name__ == "__main__":
    sys.exit(main())
