"""The agent console and the read-only profile API: `create_app(ws)`.

API (JSON):
- `GET /api/profiles?q=<email | phone | name | unified id>[&postcode=]`: the profile
  document of `cdp profile --format json` (cdp.profile.load) with 200; 404 when nobody
  matches; **300 Multiple Choices** with `{"candidates": [...]}` (id, name, postcode, city)
  when several people do (a name two people share, a family mailbox): the caller picks
  one and asks `/api/profiles/{id}`. A 2xx status always means one profile.
- `GET /api/profiles/{unified_individual_id}`: one profile, 404 if unknown.
- `GET /api/segments`: every segment with its member count.
- `GET /api/segments/{name}/members?limit=100&offset=0`: member ids in id order, with the
  total; 404 for a segment neither declared nor in the store.
- `GET /healthz`: 200 with the snapshot served, 503 before the first run.

Pages: `/` (search, candidates, not found), `/people/{id}` (card, insights, timeline,
segments, records) and `/people/{id}/explain` (the evidence of `cdp explain`).

Every request is read from the newest published profile store (cdp.serve.store). The
log names the route, never the query string nor the path's values: `GET
/api/profiles/{unified_individual_id} 200 4.1 ms`, so no email or phone reaches it.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import os
import time
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from cdp.errors import CdpError
from cdp.serve.store import NoStore, StoreReader
from cdp.workspace import Workspace

log = logging.getLogger("cdp.serve")
HERE = Path(__file__).resolve().parent
TOKEN_COOKIE = "cdp_serve_token"
NOT_FOUND = "no unified individual matches that email, phone, id or name"


def create_app(ws: Workspace, token: str | None = None) -> FastAPI:
    """The application over workspace `ws`. With a `token`, every request must carry
    `Authorization: Bearer <token>` (or the cookie a page visit with `?token=` sets)."""
    from cdp.profile import find, load

    reader = StoreReader(ws)
    app = FastAPI(
        title="CDP profile API",
        description="Read-only unified profiles and segment members.",
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.reader = reader
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.filters["money"] = _money
    templates.env.filters["when"] = _when
    templates.env.filters["pct"] = _pct

    def page(request: Request, template: str, status: int = 200, **context) -> HTMLResponse:
        return templates.TemplateResponse(
            request, template, {"workspace": ws.root.name, **context}, status_code=status
        )

    # ---------------------------------------------------------------- API
    @app.get("/healthz")
    def healthz() -> JSONResponse:
        try:
            with reader.cursor() as (snap, cur):
                profiles = cur.execute("select count(*) from customer").fetchone()[0]
        except NoStore as e:
            return JSONResponse({"status": "no profile store", "error": str(e)}, 503)
        return JSONResponse({"status": "ok", "profiles": profiles, "published": snap.published_iso})

    @app.get("/api/profiles")
    def search_profiles(
        q: str = Query(..., description="An email, a phone, a unified id or a name."),
        postcode: str | None = Query(None, description="With a name: only this postcode."),
    ) -> JSONResponse:
        with reader.cursor() as (snap, cur):
            ids = find(cur, q, snap.region, postcode)
            if not ids:
                return _error(404, NOT_FOUND)
            if len(ids) == 1:
                doc = load(cur, ids[0])
                return JSONResponse(doc) if doc else _error(404, NOT_FOUND)
            return JSONResponse(
                {"count": len(ids), "candidates": _candidates(cur, ids)}, status_code=300
            )

    @app.get("/api/profiles/{unified_individual_id}")
    def get_profile(unified_individual_id: str) -> JSONResponse:
        with reader.cursor() as (_, cur):
            doc = load(cur, unified_individual_id)
        return JSONResponse(doc) if doc else _error(404, "no unified individual with that id")

    @app.get("/api/segments")
    def list_segments() -> JSONResponse:
        with reader.cursor() as (_, cur):
            sizes = dict(_segment_sizes(cur))
        for name in _declared_segments(ws):
            sizes.setdefault(name, 0)
        return JSONResponse(
            {"segments": [{"segment_name": n, "members": sizes[n]} for n in sorted(sizes)]}
        )

    @app.get("/api/segments/{name}/members")
    def segment_members(
        name: str,
        limit: int = Query(100, ge=1, le=1000),
        offset: int = Query(0, ge=0),
    ) -> JSONResponse:
        with reader.cursor() as (_, cur):
            if not _has_table(cur, "segment"):
                total = 0
            else:
                total = cur.execute(
                    "select count(*) from segment where segment_name = ?", [name]
                ).fetchone()[0]
            if total == 0 and name not in _declared_segments(ws):
                return _error(404, f"no segment named {name!r}")
            rows = (
                cur.execute(
                    "select unified_individual_id from segment where segment_name = ? "
                    "order by unified_individual_id limit ? offset ?",
                    [name, limit, offset],
                ).fetchall()
                if total
                else []
            )
        return JSONResponse(
            {
                "segment": name,
                "total": total,
                "limit": limit,
                "offset": offset,
                "next_offset": offset + limit if offset + limit < total else None,
                "members": [{"unified_individual_id": r[0]} for r in rows],
            }
        )

    # ---------------------------------------------------------------- pages
    @app.get("/", response_class=HTMLResponse)
    def index(request: Request, q: str = "", postcode: str = "") -> Response:
        q, postcode = q.strip(), postcode.strip()
        if not q:
            return page(request, "index.html", q="", postcode=postcode)
        try:
            with reader.cursor() as (snap, cur):
                ids = find(cur, q, snap.region, postcode or None)
                if len(ids) == 1:
                    # The person's page has a clean address: the email or phone typed in
                    # stays out of the URL bar and the browser's history.
                    return RedirectResponse(f"/people/{ids[0]}", status_code=303)
                candidates = _candidates(cur, ids) if ids else []
        except NoStore:
            raise
        except CdpError as e:  # e.g. a phone number that cannot be read
            return page(request, "index.html", 400, q=q, postcode=postcode, problem=str(e))
        if not ids:
            return page(request, "index.html", 404, q=q, postcode=postcode, problem=NOT_FOUND)
        return page(request, "index.html", q=q, postcode=postcode, candidates=candidates)

    @app.get("/people/{unified_individual_id}", response_class=HTMLResponse)
    def person(request: Request, unified_individual_id: str) -> Response:
        with reader.cursor() as (snap, cur):
            doc = load(cur, unified_individual_id)
        if doc is None:
            return page(request, "index.html", 404, q="", postcode="", problem=NOT_FOUND)
        return page(
            request,
            "person.html",
            doc=doc,
            c=Row(doc["customer"]),
            name=_name(doc["customer"]),
            timeline=timeline(doc),
            consents=_consents_by_channel(doc["consents"]),
            published=snap.published_iso,
        )

    @app.get("/people/{unified_individual_id}/explain", response_class=HTMLResponse)
    def explain_page(request: Request, unified_individual_id: str) -> Response:
        from cdp.identity.explain import explain

        try:
            ex = explain(ws, unified_individual_id)
        except CdpError as e:
            return page(request, "index.html", 404, q="", postcode="", problem=str(e))
        return page(
            request,
            "explain.html",
            ex=ex,
            edges=[_waterfall(e) for e in ex.edges],
            near=[_waterfall(e) for e in ex.near_misses],
        )

    @app.get("/static/console.css", include_in_schema=False)
    def css() -> Response:
        return Response(
            (HERE / "static" / "console.css").read_text(),
            media_type="text/css",
            headers={"Cache-Control": "max-age=300"},
        )

    @app.exception_handler(NoStore)
    def no_store(request: Request, exc: NoStore) -> Response:
        if request.url.path.startswith("/api/"):
            return _error(503, str(exc))
        return page(request, "index.html", 503, q="", postcode="", problem=str(exc))

    @app.exception_handler(CdpError)
    def bad_query(request: Request, exc: CdpError) -> Response:
        return _error(400, str(exc))  # e.g. a phone number that cannot be read

    app.add_middleware(GuardAndLog, token=token)
    return app


# -------------------------------------------------------------------- helpers


class Row(dict):
    """A customer row for the templates: a column the marts do not have reads as None."""

    def __missing__(self, key):
        return None


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _has_table(cur, name: str) -> bool:
    return bool(
        cur.execute(
            "select count(*) from information_schema.tables where table_name = ?", [name]
        ).fetchone()[0]
    )


def _segment_sizes(cur) -> list[tuple[str, int]]:
    if not _has_table(cur, "segment"):
        return []
    return cur.execute(
        "select segment_name, count(*) from segment group by 1 order by 1"
    ).fetchall()


def _declared_segments(ws: Workspace) -> set[str]:
    if not ws.segments_dir.is_dir():
        return set()
    return {p.stem for p in ws.segments_dir.glob("*.yml")} | {
        p.stem for p in ws.segments_dir.glob("*.yaml")
    }


def _candidates(cur, ids: list[str]) -> list[dict]:
    """id, name, postcode and city of each person a query names, to choose from."""
    cols = {r[0] for r in cur.execute("describe customer").fetchall()}
    pick = [c for c in ("first_name", "last_name", "postal_code", "city") if c in cols]
    rows = cur.execute(
        f"select unified_individual_id, {', '.join(pick) or 'null'} from customer "
        "where unified_individual_id in (select unnest(?)) order by unified_individual_id",
        [ids],
    ).fetchall()
    out = []
    for r in rows:
        c = dict(zip(["unified_individual_id", *pick], r, strict=False))
        out.append(
            {
                "unified_individual_id": c["unified_individual_id"],
                "name": _name(c),
                "postal_code": c.get("postal_code"),
                "city": c.get("city"),
            }
        )
    return out


def _name(c: dict) -> str:
    return " ".join(str(c[k]) for k in ("first_name", "last_name") if c.get(k)) or "(no name)"


def timeline(doc: dict) -> list[dict]:
    """Orders, service cases and email engagement in one list, newest first."""
    items = []
    for o in doc.get("orders") or []:
        amount = o.get("amount_reporting") or o.get("amount")
        currency = o.get("reporting_currency") if o.get("amount_reporting") else o.get("currency")
        items.append(
            {
                "ts": o.get("order_ts"),
                "kind": "order",
                "title": f"order {o.get('order_id') or ''}".strip(),
                "detail": " · ".join(
                    str(x)
                    for x in (
                        _money(amount, currency) if amount is not None else None,
                        o.get("status"),
                        o.get("channel"),
                    )
                    if x
                ),
            }
        )
    for s in doc.get("service_cases") or []:
        items.append(
            {
                "ts": s.get("opened_ts"),
                "kind": "case",
                "title": f"service case {s.get('case_id') or ''}".strip(),
                "detail": " · ".join(
                    str(x)
                    for x in (
                        s.get("subject"),
                        s.get("status"),
                        s.get("channel"),
                        s.get("priority"),
                    )
                    if x
                ),
            }
        )
    for e in doc.get("engagement") or []:
        items.append(
            {
                "ts": e.get("event_ts"),
                "kind": "email",
                "title": f"email {e.get('event_type') or 'event'}",
                "detail": e.get("campaign") or "",
            }
        )
    return sorted(items, key=lambda i: i["ts"] or "", reverse=True)


def _consents_by_channel(consents: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for c in consents:
        out.setdefault(c.get("channel") or "any", []).append(c)
    return out


def _waterfall(edge: dict) -> dict:
    """An edge's match weights as bars: the prior, then each comparison, then the total."""
    mws = [(k[3:], float(v)) for k, v in edge.items() if k.startswith("mw_") and v is not None]
    total = edge.get("match_weight")
    bars = []
    if total is not None:
        bars.append(("prior", float(total) - sum(w for _, w in mws)))
    bars += mws
    scale = max([abs(w) for _, w in bars] + [1.0])
    return {
        "edge": edge,
        "stage": edge.get("stage") or "",
        "deterministic": str(edge.get("stage") or "").startswith("deterministic"),
        "bars": [
            {"name": n, "weight": w, "width": round(100 * abs(w) / scale, 1)} for n, w in bars
        ],
        "total": total,
        "probability": edge.get("match_probability"),
    }


def _money(value, currency: str | None = None) -> str:
    if value is None:
        return "–"
    try:
        text = f"{float(value):,.2f}"
    except (TypeError, ValueError):
        return str(value)
    return f"{text} {currency}" if currency else text


def _when(value) -> str:
    if not value:
        return ""
    return str(value).replace("T", " ")[:16]


def _pct(value) -> str:
    if value is None:
        return "–"
    return f"{float(value) * 100:.0f}%"


# -------------------------------------------------------------------- middleware


class GuardAndLog:
    """The outermost layer: the bearer token (when set), the access log (route template,
    status and time: no query string, no path values), and a 500 that names nothing.

    uvicorn's own access log is off (`cdp serve`): it prints query strings, and a search
    is `?q=someone@example.com`. An unhandled error is logged by its type only, since a
    message may quote a value (`CDP_DEBUG=1` logs the traceback)."""

    def __init__(self, app, token: str | None = None):
        self.app = app
        self.token = token

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = {"code": 0}

        async def sending(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            if self.token is not None and not await self._admitted(scope, sending):
                return
            await self.app(scope, receive, sending)
        except Exception as e:
            if os.environ.get("CDP_DEBUG"):
                log.exception("error in %s %s", scope["method"], _route(scope))
            else:
                log.error("error in %s %s: %s", scope["method"], _route(scope), type(e).__name__)
            if not status["code"]:
                await JSONResponse({"error": "internal error"}, 500)(scope, receive, sending)
        finally:
            log.info(
                "%s %s %s %.1f ms",
                scope["method"],
                _route(scope),
                status["code"],
                (time.perf_counter() - started) * 1000,
            )

    async def _admitted(self, scope, send) -> bool:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer ") and self._ok(auth[7:].strip()):
            return True
        cookie = SimpleCookie()
        with contextlib.suppress(Exception):  # a malformed cookie header is no token
            cookie.load(headers.get("cookie", ""))
        if TOKEN_COOKIE in cookie and self._ok(cookie[TOKEN_COOKIE].value):
            return True
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        given = [v for k, v in query if k == "token"]
        if given and self._ok(given[-1]) and scope["method"] == "GET":
            # A browser opens the console once with ?token=…: it gets a cookie and the same
            # address without the token, so the token stays out of the history.
            rest = urlencode([(k, v) for k, v in query if k != "token"])
            target = scope["path"] + (f"?{rest}" if rest else "")
            response = RedirectResponse(target, status_code=303)
            response.set_cookie(TOKEN_COOKIE, given[-1], httponly=True, samesite="strict", path="/")
            await response(scope, None, send)
            return False
        response = JSONResponse(
            {"error": "a bearer token is required: Authorization: Bearer <CDP_SERVE_TOKEN>"},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
        await response(scope, None, send)
        return False

    def _ok(self, given: str) -> bool:
        return hmac.compare_digest(given.encode(), (self.token or "").encode())


def _route(scope) -> str:
    """The matched route's template (`/people/{unified_individual_id}`), never the path."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path or "(no route)"
