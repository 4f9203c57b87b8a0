"""``python -m include.sandbox [--host 127.0.0.1] [--port 8900] [--seed 0] [--latency-ms 0]``"""

from __future__ import annotations

import argparse


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m include.sandbox", description=__doc__)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8900)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--latency-ms", type=int, default=0, help="added to every request of every system")
    ap.add_argument("--systems", nargs="*", default=None, help="only these systems (default: all)")
    args = ap.parse_args()
    import uvicorn

    from include.sandbox.app import create_app

    app = create_app(seed=args.seed, systems=args.systems, latency_ms=args.latency_ms)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
