"""Secret redaction: recall on generated secrets in CI-log contexts, look-alikes left alone, real logs
unchanged, and throughput on a 20 MB log.

    .venv/bin/python benchmarks/redaction.py [--dataset DIR] [--log-mb 20] [--runs 3] [--formats N] [--verbose]

* **Recall.** ``benchmarks/redaction_corpus.py`` makes a secret for each documented format from its
  prefix, alphabet and length (seeded) and places it in keyword / structure contexts (env, YAML, JSON,
  HTTP header, URL, command line, exception message, Maven debug output; plus connection strings, SAS
  URLs, docker config, PEM and PuTTY keys, …) and, for self-identifying formats, in contexts with no
  keyword at all (alone on a line, as a shell argument, inside a message). A case is caught when no
  8-character piece of the secret survives. Goals: recall >= 0.98 (keyword / structure contexts),
  self-identifying recall >= 0.95.
* **Look-alikes.** SHAs, UUIDs, digests, integrity hashes, base64 of words, class names, Maven
  coordinates, Gradle paths, file paths, versions, prose after secret-named services, empty YAML
  values, placeholders, settings, public keys, URLs, generated ids: every line must come out unchanged
  (goal 0 changed).
* **Real logs.** Every ``*.log`` of the ci-breakages dataset (``../shared/datasets/ci-breakages``):
  the logs hold no credential, so no line may change (goal 0).
* **Speed.** The real logs repeated to ``--log-mb`` MB with one planted case (in a seeded random
  order) every 200 lines, through ``redact()`` in one call (best of ``--runs``); goal >= 6 MB/s on 2
  cores. Without the dataset the filler is the look-alikes, and ``real_log_lines_changed`` is ``n/a``.

Ends with one ``key=value`` line:
``formats=… cases=… recall=… self_identifying_recall=… lookalikes_changed=… real_log_lines_changed=… mb_per_s=…``
"""

from __future__ import annotations

import argparse
import importlib
import random
import sys
import time
from collections import Counter
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATASET = (REPO / ".." / "shared" / "datasets" / "ci-breakages").resolve()


def _modules() -> tuple[ModuleType, ModuleType]:
    sys.path[:0] = [str(REPO), str(REPO / "plugins")]
    return importlib.import_module("benchmarks.redaction_corpus"), importlib.import_module(
        "devops_automation.ci_logs.redact"
    )


def _table(title: str, header: tuple[str, ...], rows: list[tuple[object, ...]]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    print(f"\n## {title}")
    print(
        "  ".join(
            str(h).ljust(w) if i == 0 else str(h).rjust(w) for i, (h, w) in enumerate(zip(header, widths, strict=True))
        )
    )
    for row in rows:
        print(
            "  ".join(
                str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    ap.add_argument("--log-mb", type=float, default=20.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--formats", type=int, default=None, help="only the first N formats (a quick run)")
    ap.add_argument("--verbose", action="store_true", help="print every miss and every changed line")
    args = ap.parse_args(argv)
    corpus, rm = _modules()
    redact = rm.redact

    # --- recall
    cases = corpus.cases(formats=args.formats)
    results = [(c, corpus.caught(c, redact(c.text).text)) for c in cases]
    rows = []
    for category in ("keyword", "self"):
        contexts = sorted({c.context for c, _ in results if c.category == category}, key=lambda x: (x != "env", x))
        for ctx in contexts:
            sel = [ok for c, ok in results if c.category == category and c.context == ctx]
            rows.append((f"{category}/{ctx}", len(sel), sum(sel), f"{sum(sel) / len(sel):.3f}"))
    _table(
        "recall by context (a case is caught when no 8-character piece of its secret survives)",
        ("context", "cases", "caught", "recall"),
        rows,
    )
    misses = [c for c, ok in results if not ok]
    if misses:
        print(f"missed: {', '.join(sorted({f'{c.format}/{c.context}' for c in misses}))}")
        if args.verbose:
            for c in misses:
                print(f"  MISS {c.format}/{c.context}: {c.text[:160]!r} -> {redact(c.text).text[:160]!r}")

    def recall(category: str) -> float:
        sel = [ok for c, ok in results if c.category == category]
        return sum(sel) / len(sel) if sel else 1.0

    # --- look-alikes
    looks = corpus.lookalikes()
    changed = [la for la in looks if redact(la.text).text != la.text]
    by_cls, bad_cls = Counter(la.cls for la in looks), Counter(la.cls for la in changed)
    _table(
        "look-alikes (must come out unchanged)",
        ("class", "lines", "changed"),
        [(k, v, bad_cls[k]) for k, v in by_cls.items()],
    )
    for la in changed if args.verbose else []:
        print(f"  CHANGED {la.cls}: {la.text[:160]!r} -> {redact(la.text).text[:160]!r}")

    # --- real logs
    logs = sorted(args.dataset.glob("cases/*/*.log")) if args.dataset.is_dir() else []
    real_changed: int | str = "n/a"
    texts = []
    if logs:
        real_changed, total_lines = 0, 0
        for path in logs:
            text = path.read_bytes().decode("utf-8", errors="replace")
            texts.append(text)
            before, after = text.split("\n"), redact(text).text.split("\n")
            total_lines += len(before)
            diff = [(a, b) for a, b in zip(before, after, strict=False) if a != b]
            real_changed += len(diff) + abs(len(before) - len(after))
            for a, b in diff if args.verbose else []:
                print(f"  REAL {path.parent.name}/{path.name}: {a[:160]!r} -> {b[:160]!r}")
        print(f"\n## real logs ({args.dataset})")
        mb_real = sum(map(len, texts)) / 1e6
        print(f"{len(logs)} files, {total_lines:,} lines, {mb_real:.1f} MB: {real_changed} lines changed")
    else:
        print(f"\n## real logs: {args.dataset} not found, the speed log is made of look-alikes")
        texts = ["\n".join(la.text for la in looks)]

    # --- speed
    filler = "\n".join(texts).split("\n")
    planted = [c.text for c in cases]
    random.Random(corpus.SEED).shuffle(planted)  # every format and context, spread over the log
    target = int(args.log_mb * 1_000_000)
    out, size, i, k = [], 0, 0, 0
    while size < target:
        line = filler[i % len(filler)]
        out.append(line)
        size += len(line) + 1
        i += 1
        if i % 200 == 0:
            out.append(planted[k % len(planted)])
            size += len(out[-1]) + 1
            k += 1
    log = "\n".join(out)
    best = float("inf")
    for _ in range(max(1, args.runs)):
        t0 = time.perf_counter()
        result = redact(log)
        best = min(best, time.perf_counter() - t0)
    mb = len(log.encode("utf-8", errors="replace")) / 1e6
    candidates = rm._candidate_lines(log)
    print("\n## speed")
    print(
        f"{mb:.1f} MB log ({len(out):,} lines, {k:,} planted cases): best of {max(1, args.runs)} {best:.2f} s = "
        f"{mb / best:.1f} MB/s; lines looked at by the rules: {len(candidates):,} "
        f"({100 * len(candidates) / len(out):.1f} %); secrets replaced: {result.total:,}"
    )
    kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(result.counts.items(), key=lambda kv: -kv[1])[:8])
    print(f"most replaced kinds: {kinds}")

    formats = len({c.format for c in cases})
    print(
        f"formats={formats} cases={len(cases)} recall={recall('keyword'):.3f} "
        f"self_identifying_recall={recall('self'):.3f} lookalikes_changed={len(changed)} "
        f"real_log_lines_changed={real_changed} mb_per_s={mb / best:.1f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
