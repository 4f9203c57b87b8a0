"""Failure-log excerpt vs. the plain tail, on the labelled ci-breakages dataset, plus a 50 MB log.

    .venv/bin/python benchmarks/excerpt.py [--dataset DIR] [--budgets 2000,4000,8000] [--big-mb 50]
                                           [--cases a,b,...] [--no-big] [--verbose]

For every case and budget, with and without the passing log, the excerpt is measured against the
labelled error lines (``E`` blocks of ``groundtruth``):

* block recall: share of ``E`` blocks with at least one line kept;
* line recall: share of ``E`` lines kept;
* chars: size of the excerpt text (what would be sent to a model), and the time it took.

The baseline is the tail: the lines touched by the last N characters of the log, at the same budget.

Beside the CiDiff figures, the multi-language development set (``--multilang``, default
``benchmarks/data/excerpt_multilang``: real failed CI logs from public repositories under permissive
licences, each labelled with the lines that explain the failure; see its README.md and manifest.json)
is measured at the same budgets against the same tail baseline:

* hit rate: share of logs with at least one labelled (``error``) line kept;
* line recall: share of labelled lines kept (mean over logs);

overall and per language and CI system.

Then a synthetic log of ``--big-mb`` MB (a real failing log with tens of MB of build output spliced in
front of its error part) is excerpted in a child process, which reports its wall time and peak RSS.

Ends with one ``key=value`` summary line (DEVELOPERS.md benchmark rule).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "plugins")]

from devops_automation.ci_logs.excerpt import excerpt, tail_excerpt  # noqa: E402
from include.sandbox import processes  # noqa: E402  (the child is stopped however this script ends)

DEFAULT_DATASET = (REPO / ".." / "shared" / "datasets" / "ci-breakages").resolve()
DEFAULT_MULTILANG = REPO / "benchmarks" / "data" / "excerpt_multilang"


@dataclass
class Case:
    name: str
    fail: Path
    passed: Path
    blocks: list[tuple[int, int]]  # E blocks


def load_cases(dataset: Path, only: set[str] | None = None) -> list[Case]:
    root = dataset / "cases" if (dataset / "cases").is_dir() else dataset
    cases = []
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        if only and d.name not in only:
            continue
        blocks = []
        for row in (d / "groundtruth").read_text().splitlines()[1:]:
            parts = row.split()
            if len(parts) != 2 or parts[0] != "E":
                continue
            a, _, b = parts[1].partition("-")
            blocks.append((int(a), int(b or a)))
        cases.append(Case(d.name, d / "fail.log", d / "pass.log", blocks))
    return cases


def measure(kept: set[int], blocks: list[tuple[int, int]]) -> tuple[float, float, bool]:
    hit = sum(1 for a, b in blocks if any(n in kept for n in range(a, b + 1)))
    lines = {n for a, b in blocks for n in range(a, b + 1)}
    line_hit = len(lines & kept)
    return hit / len(blocks), line_hit / len(lines), hit == len(blocks)


def run_dataset(cases: list[Case], budgets: list[int], verbose: bool) -> dict[str, object]:
    results: dict[str, object] = {}
    rows = []
    for budget in budgets:
        for with_pass in (False, True):
            for case in cases:
                t0 = time.perf_counter()
                ex = excerpt(case.fail, case.passed if with_pass else None, budget=budget)
                dt = time.perf_counter() - t0
                br, lr, allhit = measure(set(ex.lines), case.blocks)
                tl, tchars = tail_excerpt(case.fail, budget)
                tbr, tlr, tall = measure(set(tl), case.blocks)
                rows.append((budget, with_pass, case.name, br, lr, allhit, ex.chars, dt, tbr, tlr, tall, tchars))
                if verbose and not allhit:
                    missed = [f"{a}-{b}" for a, b in case.blocks if not any(n in ex.lines for n in range(a, b + 1))]
                    print(f"  miss budget={budget} pass={with_pass} {case.name}: blocks {missed}", file=sys.stderr)
    results["rows"] = rows
    return results


def print_tables(rows: list[tuple], budgets: list[int], cases: list[Case]) -> dict[str, object]:
    summary: dict[str, object] = {}
    hdr = (
        f"{'case':28} {'E':>2} | {'blk%':>5} {'line%':>6} {'chars':>6} {'ms':>6} | "
        f"{'tail blk%':>9} {'tail line%':>10} {'tail chars':>10}"
    )
    for budget in budgets:
        for with_pass in (False, True):
            sel = [r for r in rows if r[0] == budget and r[1] == with_pass]
            print(f"\n## budget {budget} chars, {'with' if with_pass else 'without'} passing log")
            print(hdr)
            print("-" * len(hdr))
            for r in sel:
                nblocks = len(next(c for c in cases if c.name == r[2]).blocks)
                print(
                    f"{r[2]:28} {nblocks:>2} | {100 * r[3]:5.0f} {100 * r[4]:6.1f} {r[6]:6d} {1000 * r[7]:6.1f} | "
                    f"{100 * r[8]:9.0f} {100 * r[9]:10.1f} {r[11]:10d}"
                )
            n = len(sel)
            allhit = sum(1 for r in sel if r[5])
            tallhit = sum(1 for r in sel if r[10])
            med = statistics.median(r[6] for r in sel) if sel else 0
            print("-" * len(hdr))
            blk = 100 * statistics.mean(r[3] for r in sel)
            line = 100 * statistics.mean(r[4] for r in sel)
            ms = 1000 * statistics.median(r[7] for r in sel)
            tail_blk = 100 * statistics.mean(r[8] for r in sel)
            tail_line = 100 * statistics.mean(r[9] for r in sel)
            tail_chars = statistics.median(r[11] for r in sel)
            print(
                f"{'ALL':28} {'':>2} | {blk:5.1f} {line:6.1f} "
                f"{med:6.0f} {ms:6.1f} | {tail_blk:9.1f} "
                f"{tail_line:10.1f} {tail_chars:10.0f}"
            )
            print(f"all blocks hit: excerpt {allhit}/{n}, tail {tallhit}/{n}; median excerpt chars {med:.0f}")
            tag = f"{budget}" + ("_pass" if with_pass else "")
            summary[f"block_recall_{tag}"] = round(statistics.mean(r[3] for r in sel), 3)
            summary[f"line_recall_{tag}"] = round(statistics.mean(r[4] for r in sel), 3)
            summary[f"all_blocks_hit_{tag}"] = f"{allhit}/{n}"
            summary[f"median_chars_{tag}"] = int(med)
            summary[f"tail_all_blocks_hit_{tag}"] = f"{tallhit}/{n}"
    return summary


def print_overview(rows: list[tuple], budgets: list[int]) -> None:
    """One row per budget and passing-log setting: excerpt vs tail."""
    print("\n## overview (all cases)")
    hdr = (
        f"{'budget':>6} {'passing':>7} | {'all hit':>7} {'blk rec':>7} {'line rec':>8} "
        f"{'med chars':>9} {'med ms':>6} | {'tail hit':>8} {'tail blk':>8} {'tail line':>9}"
    )
    print(hdr)
    print("-" * len(hdr))
    for budget in budgets:
        for with_pass in (False, True):
            sel = [r for r in rows if r[0] == budget and r[1] == with_pass]
            n = len(sel)
            passing = "yes" if with_pass else "no"
            all_hit = sum(r[5] for r in sel)
            blk_rec = statistics.mean(r[3] for r in sel)
            line_rec = statistics.mean(r[4] for r in sel)
            med_chars = statistics.median(r[6] for r in sel)
            med_ms = 1000 * statistics.median(r[7] for r in sel)
            tail_hit = sum(r[10] for r in sel)
            tail_blk = statistics.mean(r[8] for r in sel)
            tail_line = statistics.mean(r[9] for r in sel)
            print(
                f"{budget:>6} {passing:>7} | {all_hit:>3}/{n:<3} {blk_rec:7.3f} "
                f"{line_rec:8.3f} {med_chars:9.0f} {med_ms:6.1f} | "
                f"{tail_hit:>4}/{n:<3} {tail_blk:8.3f} {tail_line:9.3f}"
            )


def print_label_notes(cases: list[Case]) -> None:
    """Point out labels that look odd: an E block inside another one, or listed out of line order."""
    notes = []
    for c in cases:
        for i, (a, b) in enumerate(c.blocks):
            outer = [
                f"{x}-{y}" for j, (x, y) in enumerate(c.blocks) if j != i and x <= a and b <= y and (x, y) != (a, b)
            ]
            if outer:
                notes.append(f"{c.name}: E {a}-{b} lies inside E {', '.join(outer)}")
            if i and a < c.blocks[i - 1][0]:
                notes.append(f"{c.name}: E {a}-{b} is listed after E {c.blocks[i - 1][0]}-{c.blocks[i - 1][1]}")
    if notes:
        print("\n## groundtruth notes (the counts above use the labels as they are)")
        for n in notes:
            print("  " + n)


# ---- the multi-language development set ------------------------------------------------------------
@dataclass
class MlCase:
    id: str
    path: Path
    language: str
    ci: str
    error: set[int]  # the labelled lines (``error`` ranges of the manifest)


def parse_ranges(ranges: list[str]) -> set[int]:
    """``["3-5", "9"]`` -> ``{3, 4, 5, 9}``."""
    out: set[int] = set()
    for r in ranges:
        a, _, b = r.partition("-")
        out.update(range(int(a), int(b or a) + 1))
    return out


def load_multilang(root: Path) -> list[MlCase]:
    """The cases of ``root/manifest.json`` whose log file is there (the repository keeps the labels and
    where each log comes from, not the logs: see the set's README)."""
    manifest = json.loads((root / "manifest.json").read_text())
    cases = [
        MlCase(c["id"], root / c["file"], c["language"], c["ci"], parse_ranges(c["error"])) for c in manifest["cases"]
    ]
    present = [c for c in cases if c.path.is_file()]
    if len(present) < len(cases):
        print(
            f"multi-language set: {len(present)} of {len(cases)} logs present under {root} "
            "(each comes from the repository, path and commit its manifest entry names)",
            file=sys.stderr,
        )
    return present


def read_log(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.suffix == ".gz" else data


def run_multilang(cases: list[MlCase], budgets: list[int], verbose: bool) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for case in cases:
        data = read_log(case.path)
        for budget in budgets:
            t0 = time.perf_counter()
            ex = excerpt(data, budget=budget)
            dt = time.perf_counter() - t0
            kept = set(ex.lines) & case.error
            tail, _ = tail_excerpt(data, budget)
            tkept = set(tail) & case.error
            rows.append(
                {
                    "id": case.id,
                    "language": case.language,
                    "ci": case.ci,
                    "budget": budget,
                    "hit": bool(kept),
                    "recall": len(kept) / len(case.error),
                    "chars": ex.chars,
                    "seconds": dt,
                    "tail_hit": bool(tkept),
                    "tail_recall": len(tkept) / len(case.error),
                }
            )
            if verbose and not kept:
                print(f"  multilang miss budget={budget} {case.id}", file=sys.stderr)
    return rows


def _ml_line(label: str, sel: list[dict[str, object]]) -> str:
    n = len(sel)
    hit = sum(1 for r in sel if r["hit"])
    thit = sum(1 for r in sel if r["tail_hit"])
    rec = statistics.mean(float(r["recall"]) for r in sel)  # type: ignore[arg-type]
    trec = statistics.mean(float(r["tail_recall"]) for r in sel)  # type: ignore[arg-type]
    med = statistics.median(int(r["chars"]) for r in sel)  # type: ignore[arg-type]
    return (
        f"{label:28} {n:>4} | {hit:>3}/{n:<3} {100 * hit / n:5.0f}% {rec:6.3f} {med:7.0f} | "
        f"{thit:>3}/{n:<3} {100 * thit / n:5.0f}% {trec:6.3f}"
    )


def print_multilang(rows: list[dict[str, object]], budgets: list[int], cases: list[MlCase]) -> dict[str, object]:
    languages = sorted({c.language for c in cases})
    systems = sorted({c.ci for c in cases})
    print(
        f"\n## multi-language development set: {len(cases)} real failed CI logs, {len(languages)} languages, "
        f"{len(systems)} CI systems (goal: >= 150 logs, >= 15 languages, >= 5 CI systems)"
    )
    hdr = (
        f"{'':28} {'logs':>4} | {'hit':>7} {'hit%':>6} {'recall':>6} {'chars':>7} | "
        f"{'tail hit':>7} {'%':>6} {'recall':>6}"
    )
    summary: dict[str, object] = {"ml_logs": len(cases), "ml_languages": len(languages), "ml_ci_systems": len(systems)}
    for budget in budgets:
        sel = [r for r in rows if r["budget"] == budget]
        print(f"\n### budget {budget} chars")
        print(hdr)
        print("-" * len(hdr))
        print(_ml_line("ALL", sel))
        for lang in languages:
            print(_ml_line(f"language {lang}", [r for r in sel if r["language"] == lang]))
        for ci in systems:
            print(_ml_line(f"CI {ci}", [r for r in sel if r["ci"] == ci]))
        n = len(sel)
        recall = [float(r["recall"]) for r in sel]  # type: ignore[arg-type]
        tail_recall = [float(r["tail_recall"]) for r in sel]  # type: ignore[arg-type]
        summary[f"ml_hit_{budget}"] = round(sum(1 for r in sel if r["hit"]) / n, 3)
        summary[f"ml_tail_hit_{budget}"] = round(sum(1 for r in sel if r["tail_hit"]) / n, 3)
        summary[f"ml_line_recall_{budget}"] = round(statistics.mean(recall), 3)
        summary[f"ml_tail_line_recall_{budget}"] = round(statistics.mean(tail_recall), 3)
    missed = sorted(
        {str(r["id"]) for r in rows if r["budget"] == (4000 if 4000 in budgets else budgets[0]) and not r["hit"]}
    )
    if missed:
        print("missed at the main budget: " + ", ".join(missed))
    return summary


# ---- the big synthetic log -----------------------------------------------------------------------
def make_big_log(case: Case, pass_logs: list[Path], target_mb: int, path: Path) -> tuple[list[tuple[int, int]], int]:
    """Write ``case``'s failing log with ~``target_mb`` MB of build output (lines of passing logs,
    with numbers varied) inserted before its first error block; returns the shifted E blocks."""
    rng = random.Random(7)
    data = case.fail.read_bytes()
    lines = data.decode("utf-8", errors="replace").splitlines(keepends=True)
    first_error = min(a for a, _ in case.blocks)
    cut = max(0, first_error - 200)
    filler_src: list[str] = []
    for p in pass_logs:
        filler_src.extend(p.read_bytes().decode("utf-8", errors="replace").splitlines())
    filler_src = [s for s in filler_src if s.strip()][:200_000]
    target = target_mb * 1024 * 1024
    inserted = 0
    with open(path, "w", encoding="utf-8", newline="") as fh:
        head = "".join(lines[:cut])
        fh.write(head)
        size = len(head.encode())
        tail = "".join(lines[cut:])
        tail_size = len(tail.encode())
        buf: list[str] = []
        while size + tail_size < target:
            s = filler_src[rng.randrange(len(filler_src))]
            if rng.random() < 0.3:
                s = s.replace("0", str(rng.randrange(10)))
            s += "\n"
            buf.append(s)
            size += len(s.encode())
            inserted += 1
            if len(buf) >= 10000:
                fh.write("".join(buf))
                buf.clear()
        fh.write("".join(buf))
        fh.write(tail)
    blocks = [(a + inserted, b + inserted) if a > cut else (a, b) for a, b in case.blocks]
    return blocks, inserted


def big_child(path: str, budget: int) -> None:
    """Run in a child process: excerpt the big log, print JSON with time, peak RSS and kept lines."""
    import resource

    t0, c0 = time.perf_counter(), time.process_time()
    ex = excerpt(Path(path), budget=budget)
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "seconds": dt,
                "cpu_seconds": cpu,
                "peak_rss_mb": rss_kb / 1024,
                "lines": ex.lines,
                "chars": ex.chars,
                "total_lines": ex.total_lines,
            }
        )
    )


def run_big(cases: list[Case], big_mb: int, budget: int) -> dict[str, object]:
    base = next((c for c in cases if c.name.startswith("juliac")), None) or max(
        cases, key=lambda c: c.fail.stat().st_size
    )
    with tempfile.TemporaryDirectory(prefix="bench-excerpt-") as tmp:
        path = Path(tmp) / "big.log"
        blocks, inserted = make_big_log(base, [c.passed for c in cases], big_mb, path)
        size_mb = path.stat().st_size / 1024 / 1024
        out = processes.run(
            [sys.executable, __file__, "--big-child", str(path), "--budgets", str(budget)],
            capture_output=True,
            text=True,
            check=True,
        )
        res = json.loads(out.stdout.strip().splitlines()[-1])
    br, lr, _allhit = measure(set(res["lines"]), blocks)
    print(
        f"\n## big log: {size_mb:.1f} MB ({res['total_lines']} lines; "
        f"{inserted} lines of build output inserted into {base.name}), budget {budget}"
    )
    print(
        f"time {res['seconds']:.2f} s wall ({res['cpu_seconds']:.2f} s CPU; "
        f"load average {os.getloadavg()[0]:.1f}), peak RSS {res['peak_rss_mb']:.0f} MB, "
        f"excerpt {res['chars']} chars, block recall {100 * br:.0f}%, line recall {100 * lr:.1f}%"
    )
    return {
        "big_log_mb": round(size_mb),
        "big_log_s": round(res["seconds"], 2),
        "big_log_cpu_s": round(res["cpu_seconds"], 2),
        "peak_rss_mb": round(res["peak_rss_mb"]),
        "big_log_block_recall": round(br, 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    ap.add_argument("--multilang", type=Path, default=DEFAULT_MULTILANG, help="the multi-language set (manifest.json)")
    ap.add_argument("--no-multilang", action="store_true", help="skip the multi-language set")
    ap.add_argument("--budgets", default="2000,4000,8000")
    ap.add_argument("--big-mb", type=int, default=50)
    ap.add_argument("--no-big", action="store_true", help="skip the synthetic big log")
    ap.add_argument("--cases", default="", help="comma-separated case names (default: all)")
    ap.add_argument("--verbose", action="store_true", help="list missed blocks on stderr")
    ap.add_argument("--big-child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    budgets = [int(b) for b in args.budgets.split(",") if b]
    if args.big_child:
        big_child(args.big_child, budgets[0])
        return
    cases = load_cases(args.dataset, set(filter(None, args.cases.split(","))) or None)
    if not cases:
        sys.exit(f"no cases under {args.dataset}")
    res = run_dataset(cases, budgets, args.verbose)
    summary: dict[str, object] = {"cases": len(cases)}
    summary.update(print_tables(res["rows"], budgets, cases))  # type: ignore[arg-type]
    print_overview(res["rows"], budgets)  # type: ignore[arg-type]
    ml_cases = (
        [] if args.no_multilang or not (args.multilang / "manifest.json").is_file() else load_multilang(args.multilang)
    )
    if ml_cases:
        summary.update(print_multilang(run_multilang(ml_cases, budgets, args.verbose), budgets, ml_cases))
    if not args.no_big and args.big_mb > 0:
        summary.update(run_big(cases, args.big_mb, 4000 if 4000 in budgets else budgets[0]))
    print_label_notes(cases)
    main_budget = 4000 if 4000 in budgets else budgets[0]
    keys = [
        "cases",
        f"all_blocks_hit_{main_budget}",
        f"median_chars_{main_budget}",
        f"block_recall_{main_budget}",
        f"tail_all_blocks_hit_{main_budget}",
    ]
    keys += [
        "ml_logs",
        "ml_languages",
        "ml_ci_systems",
        f"ml_hit_{main_budget}",
        f"ml_tail_hit_{main_budget}",
        f"ml_line_recall_{main_budget}",
    ]
    keys += ["big_log_mb", "big_log_s", "peak_rss_mb"]
    for b in budgets:  # the rest, after the headline keys
        keys += [
            f"block_recall_{b}",
            f"all_blocks_hit_{b}",
            f"median_chars_{b}",
            f"tail_all_blocks_hit_{b}",
            f"all_blocks_hit_{b}_pass",
            f"median_chars_{b}_pass",
        ]
    for b in budgets:
        keys += [f"ml_hit_{b}", f"ml_tail_hit_{b}", f"ml_line_recall_{b}", f"ml_tail_line_recall_{b}"]
    keys += ["big_log_cpu_s", "big_log_block_recall"]
    keys = list(dict.fromkeys(keys))
    print("\n" + " ".join(f"{k}={summary[k]}" for k in keys if k in summary))


if __name__ == "__main__":
    with processes.ProcessGuard("excerpt"):  # SIGTERM/SIGINT: the big-log child is stopped too
        main()
