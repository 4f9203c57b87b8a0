"""Command line: excerpt (and classify) a failed CI job's log.

    PYTHONPATH=plugins python -m devops_automation.ci_logs FAIL_LOG [--passed PASS_LOG] [--budget N]
                                                        [--lines | --text | --json]

``FAIL_LOG`` may be ``-`` for standard input. ``--text`` (the default) prints the excerpt as a model
would see it (secrets redacted); ``--lines`` only the kept 1-based line numbers, one per line, runs as
``a-b``; ``--json`` the excerpt and the offline classification as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .classify import classify_excerpt
from .excerpt import ExcerptConfig, excerpt
from .models import format_ranges


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m devops_automation.ci_logs",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("fail_log", help="log of the failed job (path, or - for stdin)")
    ap.add_argument("--passed", metavar="PASS_LOG", help="log of the last successful run of the same job")
    ap.add_argument(
        "--budget",
        type=int,
        default=ExcerptConfig.budget,
        help="maximum excerpt size in characters (default %(default)s)",
    )
    out = ap.add_mutually_exclusive_group()
    out.add_argument("--lines", action="store_const", const="lines", dest="fmt", help="print the kept line numbers")
    out.add_argument("--text", action="store_const", const="text", dest="fmt", help="print the excerpt (default)")
    out.add_argument(
        "--json", action="store_const", const="json", dest="fmt", help="print excerpt + classification as JSON"
    )
    args = ap.parse_args(argv)
    if args.budget <= 0:
        ap.error("--budget must be positive")
    try:
        source = sys.stdin.buffer if args.fail_log == "-" else Path(args.fail_log)
        passed = Path(args.passed) if args.passed else None
        for p in (source, passed):
            if isinstance(p, Path) and not p.is_file():
                ap.error(f"no such file: {p}")
        ex = excerpt(source, passed, budget=args.budget)
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    fmt = args.fmt or "text"
    if fmt == "lines":
        sys.stdout.write("".join(f"{r}\n" for r in format_ranges(ex.lines)))
    elif fmt == "json":
        data = ex.to_dict()
        data["classification"] = classify_excerpt(ex).to_dict()
        json.dump(data, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(ex.text + ("\n" if ex.text else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
