"""Build the sandbox FastAPI app from the system modules and add the ``/_sandbox`` control API."""

from __future__ import annotations

import importlib
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from pydantic import BaseModel

from include.sandbox.core import FaultRule, Sandbox, SandboxMiddleware, get_sandbox
from include.sandbox.systems import SYSTEMS


class ResetBody(BaseModel):
    seed: int | None = None


class LatencyBody(BaseModel):
    system: str = "*"
    ms: int = 0


class AdvanceBody(BaseModel):
    seconds: float


def load_modules(names: list[str] | None = None) -> dict[str, Any]:
    modules = {}
    for name in names or SYSTEMS:
        mod = importlib.import_module(f"include.sandbox.systems.{name}")
        for attr in ("NAME", "PREFIX", "make_state", "router", "control", "error_response"):
            if not hasattr(mod, attr):
                raise RuntimeError(f"sandbox system module {name!r} lacks {attr!r}")
        modules[mod.NAME] = mod
    return modules


def create_app(seed: int = 0, systems: list[str] | None = None, latency_ms: int = 0) -> FastAPI:
    modules = load_modules(systems)
    sandbox = Sandbox(modules=modules, seed=seed)
    if latency_ms:
        sandbox.latency_ms["*"] = latency_ms
    app = FastAPI(title="devops-automation sandbox", docs_url="/_sandbox/docs", openapi_url="/_sandbox/openapi.json")
    app.state.sandbox = sandbox
    app.add_middleware(SandboxMiddleware, sandbox=sandbox)

    @app.get("/_sandbox/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "systems": {n: m.PREFIX for n, m in modules.items()}, "seed": sandbox.seed}

    @app.get("/_sandbox/requests")
    def list_requests(
        request: Request, system: str | None = None, method: str | None = None, path: str | None = None, since: int = 0
    ) -> list[dict[str, Any]]:
        return [r.as_dict() for r in get_sandbox(request).find(system, method, path) if r.id > since]

    @app.delete("/_sandbox/requests")
    def clear_requests(request: Request) -> dict[str, Any]:
        sb = get_sandbox(request)
        with sb.lock:
            n = len(sb.requests)
            sb.requests.clear()
        return {"cleared": n}

    @app.post("/_sandbox/faults")
    def add_fault(request: Request, rule: FaultRule) -> dict[str, Any]:
        if rule.system is not None and rule.system not in modules:
            raise HTTPException(400, f"unknown system {rule.system!r}; known: {sorted(modules)}")
        try:
            return get_sandbox(request).add_fault(rule).model_dump()
        except Exception as exc:  # bad regex
            raise HTTPException(400, f"bad fault rule: {exc}") from exc

    @app.get("/_sandbox/faults")
    def list_faults(request: Request) -> list[dict[str, Any]]:
        return [f.model_dump() for f in get_sandbox(request).faults]

    @app.delete("/_sandbox/faults")
    def clear_faults(request: Request) -> dict[str, Any]:
        sb = get_sandbox(request)
        with sb.lock:
            n = len(sb.faults)
            sb.faults.clear()
        return {"cleared": n}

    @app.post("/_sandbox/latency")
    def set_latency(request: Request, body: LatencyBody) -> dict[str, Any]:
        get_sandbox(request).latency_ms[body.system] = body.ms
        return dict(get_sandbox(request).latency_ms)

    @app.post("/_sandbox/reset")
    def reset(request: Request, body: ResetBody | None = None) -> dict[str, Any]:
        get_sandbox(request).reset(body.seed if body else None)
        return {"status": "reset", "seed": get_sandbox(request).seed}

    @app.get("/_sandbox/clock")
    def clock(request: Request) -> dict[str, float]:
        return {"now": get_sandbox(request).clock.now()}

    @app.post("/_sandbox/clock/advance")
    def advance(request: Request, body: AdvanceBody) -> dict[str, float]:
        return {"now": get_sandbox(request).clock.advance(body.seconds)}

    from include.sandbox.mail_view import router as mail_router

    app.include_router(mail_router, prefix="/_sandbox/mail")
    for name, mod in modules.items():
        app.include_router(mod.control, prefix=f"/_sandbox/{name}")
        app.include_router(mod.router, prefix=mod.PREFIX)
    return app
