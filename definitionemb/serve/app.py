"""The `defemb serve` web app: FastAPI pages (server-rendered Jinja2, no JavaScript) over an
:class:`~definitionemb.serve.explorer.Explorer`, and the JSON API behind every page.

Pages: ``/`` (the run), ``/word/{word}``, ``/reverse?q=…``, ``/sql?q=…``; the same answers as JSON
under ``/api/…``, documented by FastAPI at ``/docs`` (OpenAPI at ``/openapi.json``). A bad request gets
a page or a JSON ``{"error": …}`` saying what to do, never a traceback; the server keeps serving.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from definitionemb.core.errors import DefembError
from definitionemb.serve.explorer import EXAMPLE_SQL, Explorer

__all__ = ["create_app"]

HERE = Path(__file__).parent
log = logging.getLogger("definitionemb.serve")


def _jsonable(x: Any) -> Any:
    """NaN and infinity become null (JSON has neither); dates and the like become strings."""
    if isinstance(x, float):
        return None if math.isnan(x) or math.isinf(x) else x
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if x is None or isinstance(x, (str, int, bool)):
        return x
    return str(x)


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def create_app(explorer: Explorer) -> FastAPI:
    """The app over one opened run; every request reads what `explorer` opened at start-up."""
    app = FastAPI(
        title="definitionemb explorer",
        description=f"Words, definitions, neighbours before and after, reverse search and read-only SQL "
        f"over run `{explorer.run.run_id}`. Every page has its JSON twin under /api.",
        version="1",
    )
    app.state.explorer = explorer
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.filters["url"] = lambda s: quote(str(s), safe="")
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    limits = explorer.limits

    def page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        return templates.TemplateResponse(
            request,
            name,
            {"run_id": explorer.run.run_id, "limits": limits, **context},
            status_code=status,
        )

    def form_page(
        request: Request, name: str, q: str, ask: Callable[[], dict[str, Any]], **context: Any
    ) -> HTMLResponse:
        """A page with a form: the answer to `q`, or what to change (status 400) with the form kept."""
        answer, problem = None, None
        if q.strip():
            try:
                answer = ask()
            except DefembError as exc:
                problem = str(exc)
        status = 400 if problem else 200
        return page(request, name, status=status, q=q, answer=answer, problem=problem, **context)

    def error(request: Request, status: int, message: str) -> Response:
        if _wants_json(request):
            return JSONResponse({"error": message}, status_code=status)
        return page(request, "error.html", status=status, message=message)

    @app.exception_handler(DefembError)
    async def _expected(request: Request, exc: DefembError) -> Response:
        return error(request, 400, str(exc) or type(exc).__name__)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        parts = []
        for e in exc.errors():
            where = ".".join(str(p) for p in e.get("loc", ()) if p not in ("query", "path"))
            parts.append(f"{where}: {e.get('msg', 'invalid')}")
        return error(request, 400, "bad request: " + "; ".join(parts))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        msg = "no such page; start at / (the run), /word/WORD, /reverse, /sql or /docs"
        return error(request, exc.status_code, msg if exc.status_code == 404 else str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("request %s failed", request.url.path)
        return error(request, 500, f"internal error ({type(exc).__name__}); the server keeps serving")

    k_query = Query(10, description=f"Answers to show (1–{limits.max_k}).")

    # --- the run ------------------------------------------------------------------------------------
    @app.get("/api/run", tags=["api"], summary="The run: model, lexicon, coverage, policy, report numbers")
    def api_run() -> JSONResponse:
        return JSONResponse(_jsonable(explorer.overview()))

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def run_page(request: Request) -> HTMLResponse:
        return page(request, "run.html", o=explorer.overview())

    @app.get("/plots/{name}", include_in_schema=False)
    def plot(name: str) -> FileResponse:
        return FileResponse(explorer.plot_path(name), media_type="image/png")

    # --- a word -------------------------------------------------------------------------------------
    @app.get("/api/word/{word}", tags=["api"], summary="A word: senses, pieces, neighbours before and after")
    def api_word(word: str, k: int = k_query) -> JSONResponse:
        return JSONResponse(_jsonable(explorer.word(word, k)))

    @app.get("/word", include_in_schema=False)
    def word_search(w: str = "") -> Response:
        word = w.strip()
        if not word:
            return RedirectResponse("/", status_code=303)
        return RedirectResponse(f"/word/{quote(word, safe='')}", status_code=303)

    @app.get("/word/{word}", response_class=HTMLResponse, include_in_schema=False)
    def word_page(request: Request, word: str, k: int = k_query) -> HTMLResponse:
        return page(request, "word.html", w=explorer.word(word, k))

    # --- reverse dictionary -------------------------------------------------------------------------
    @app.get("/api/reverse", tags=["api"], summary="Reverse dictionary: a definition → headwords")
    def api_reverse(
        q: str = Query(..., description="A definition, e.g. 'a young dog'."),
        k: int = k_query,
        pos: str | None = Query(None, description="Only words with a sense of this part of speech."),
    ) -> JSONResponse:
        return JSONResponse(_jsonable(explorer.reverse(q, k, pos)))

    @app.get("/reverse", response_class=HTMLResponse, include_in_schema=False)
    def reverse_page(request: Request, q: str = "", k: int = k_query, pos: str = "") -> HTMLResponse:
        return form_page(
            request,
            "reverse.html",
            q[: limits.max_query_chars],
            lambda: explorer.reverse(q, k, pos or None),
            k=k,
            pos=pos,
            pos_values=explorer.pos_values,
            scorers=explorer.scorers,
        )

    # --- SQL console --------------------------------------------------------------------------------
    @app.get("/api/sql", tags=["api"], summary="Read-only SQL over the lexicon (the `defemb sql` guard)")
    def api_sql(
        q: str = Query(..., description="SELECT, EXPLAIN or PRAGMA; anything that writes is refused."),
        format: str = Query("json", pattern="^(json|csv)$", description="json or csv"),
    ) -> Response:
        if format == "csv":
            frame, _, _ = explorer.sql_frame(q)
            return Response(
                frame.write_csv(),
                media_type="text/csv",
                headers={"Content-Disposition": 'attachment; filename="query.csv"'},
            )
        return JSONResponse(_jsonable(explorer.sql(q)))

    @app.get("/sql", response_class=HTMLResponse, include_in_schema=False)
    def sql_page(request: Request, q: str = "") -> HTMLResponse:
        return form_page(
            request, "sql.html", q[: limits.max_sql_chars], lambda: explorer.sql(q), examples=EXAMPLE_SQL
        )

    return app
