"""How long each DAG file takes to parse, what it imports, and how long the whole DagBag takes.

    .venv/bin/python benchmarks/parse_time.py [--json]

Each file is parsed in a fresh child forked from one interpreter that has already imported ``airflow.sdk``
(as the DAG processor forks its parsing children), so the time and the modules listed are the file's own
cost, and ``airflow.sdk`` is imported once, not once per file. Goal: the whole
DagBag fills in under 2 s and no file pulls in a heavy library (openai, slack_sdk, matplotlib, ...)
at parse time. The last line is ``files=… dags=… dagbag_s=… max_file_s=… heavy_imports=…``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DAGS = REPO / "dags"
sys.path.insert(0, str(REPO))

from include.sandbox import processes  # noqa: E402  (a probe is stopped however this script ends)

HEAVY = (
    "openai",
    "imap_tools",
    "telegram",
    "slack_sdk",
    "matplotlib",
    "pandas",
    "numpy",
    "aiohttp",
    "fastapi",
    "psycopg",
    "psycopg2",
    "alembic",
)

# one JSON line per file (argv[1:]), each file parsed in a child forked after airflow.sdk was imported
FILE_PROBE = r"""
import gc, json, os, sys, time, runpy, traceback
import airflow.sdk  # the DAG processor has this loaded already
from airflow.sdk import DAG
gc.freeze()  # as the DAG processor does before it forks: no copy-on-write of the parent's objects
for path in sys.argv[1:]:
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        try:
            before = set(sys.modules)
            t0 = time.perf_counter()
            ns = runpy.run_path(path, run_name="__dag_file__")
            took = time.perf_counter() - t0
            new = sorted({m.split(".")[0] for m in set(sys.modules) - before})
            dags = sorted({v.dag_id for v in ns.values() if isinstance(v, DAG)})
            print(json.dumps({"seconds": took, "modules": new, "dags": dags}), flush=True)
            os._exit(0)
        except BaseException:
            traceback.print_exc()
            print(json.dumps({"error": traceback.format_exc().strip().splitlines()[-1]}), flush=True)
            os._exit(3)
    code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    if code not in (0, 3):  # ended without a report
        print(json.dumps({"error": f"exit {code}"}), flush=True)
"""

BAG_PROBE = r"""
import json, sys, time
from airflow.dag_processing.dagbag import DagBag
t0 = time.perf_counter()
bag = DagBag(sys.argv[1])
took = time.perf_counter() - t0
import_errors = {str(k): v for k, v in bag.import_errors.items()}
print(json.dumps({"seconds": took, "dags": sorted(bag.dag_ids), "import_errors": import_errors}))
"""


def probe_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
    home = env.get("AIRFLOW_HOME") or tempfile.mkdtemp(prefix="parse-time-")
    env.update(
        {
            "AIRFLOW_HOME": home,
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
            "PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), str(DAGS)]),
        }
    )
    return env


def run_probe(code: str, arg: str, env: dict[str, str]) -> dict:
    out = processes.run([sys.executable, "-c", code, arg], env=env, capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or [f"exit {out.returncode}"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure() -> dict:
    env = probe_env()
    paths = [p for p in sorted(DAGS.glob("*.py")) if not p.name.startswith("_")]
    out = processes.run(
        [sys.executable, "-c", FILE_PROBE, *map(str, paths)], env=env, capture_output=True, text=True, timeout=600
    )
    reports = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode != 0 or len(reports) != len(paths):  # the probe itself failed (e.g. airflow.sdk)
        error = (out.stderr.strip().splitlines() or [f"exit {out.returncode}"])[-1]
        reports += [{"error": error}] * (len(paths) - len(reports))
    files = []
    for path, result in zip(paths, reports, strict=False):
        result["file"] = path.name
        result["heavy"] = sorted(m for m in result.get("modules", []) if m in HEAVY)
        files.append(result)
    bag = run_probe(BAG_PROBE, str(DAGS), env)
    return {"files": files, "dagbag": bag}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="print the measurements as JSON only")
    args = ap.parse_args()
    result = measure()
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{'file':40} {'parse_s':>8} {'dags':>5} {'heavy':>6}  modules imported beyond airflow.sdk")
    for f in result["files"]:
        if "error" in f:
            print(f"{f['file']:40} {'ERROR':>8}  {f['error']}")
            continue
        mods = ", ".join(f["modules"][:12]) + (" …" if len(f["modules"]) > 12 else "")
        print(f"{f['file']:40} {f['seconds']:8.3f} {len(f['dags']):5d} {len(f['heavy']):6d}  {mods or '-'}")
    bag = result["dagbag"]
    errors = bag.get("import_errors") or ({"dagbag": bag["error"]} if "error" in bag else {})
    for path, err in errors.items():
        print(f"import error: {path}: {str(err).strip().splitlines()[-1] if str(err).strip() else err}")
    heavy = sorted({m for f in result["files"] for m in f.get("heavy", [])})
    max_file = max((f.get("seconds", 0.0) for f in result["files"]), default=0.0)
    print(f"whole DagBag: {bag.get('seconds', float('nan')):.3f}s for {len(bag.get('dags', []))} DAGs (goal < 2 s)")
    print(
        f"files={len(result['files'])} dags={len(bag.get('dags', []))} dagbag_s={bag.get('seconds', float('nan')):.3f} "
        f"max_file_s={max_file:.3f} heavy_imports={len(heavy)} import_errors={len(errors)}"
    )
    return 1 if errors or heavy else 0


if __name__ == "__main__":
    with processes.ProcessGuard("parse_time"):  # SIGTERM/SIGINT: a running probe is stopped too
        sys.exit(main())
