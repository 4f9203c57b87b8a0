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
    # idle keep-alive connections are kept 5 minutes (uvicorn's default is 5 s): a test's client sits
    # idle through a DAG run, and reusing a connection at the very moment the server closes it fails
    # with "Remote end closed connection without response" (seen once with a loaded machine)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False, timeout_keep_alive=300)


if __name__ == "__main__":
    main()
