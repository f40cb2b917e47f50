"""The FastAPI app of the risk service (``alfia serve``): /v1/predict, /v1/model, /v1/metrics, /healthz and the
web page at /.

Bad input is answered 413 (body too large) or 422 (anything else, with the reason), never 500. Nothing a patient
record or text holds is logged: the log line of a request names only its path, status, size and time.
"""

import asyncio
import json
import logging
import time
from importlib import resources

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from alfia.errors import AlfiaError
from alfia.serving.models import PredictResponse, Refused, TooLarge, request_models
from alfia.serving.monitoring import Monitor
from alfia.serving.service import RiskService

log = logging.getLogger("alfia.serving")
KNOWN_PATHS = ("/", "/healthz", "/v1/model", "/v1/predict", "/v1/metrics", "/docs", "/openapi.json")


class BodyLimit:
    """ASGI middleware: a request body over ``max_bytes`` is answered 413 before the app parses it (whether its
    size is declared in Content-Length or only found while reading a chunked body)."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await self._refuse(send)
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_bytes:
                return await self._refuse(send)
        sent = False

        async def replay():
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, send):
        payload = json.dumps({"detail": f"the request body is larger than {self.max_bytes} bytes; send fewer "
                                        "stays per request"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})


def create_app(service: RiskService) -> FastAPI:
    limits = service.limits
    if service.schema is None:
        raise AlfiaError("the service needs a run with a text encoder (encoder.json) to generate its record form")
    _, PredictRequest = request_models(service.schema, limits.max_stays, limits.max_text_chars, service.min_words)
    monitor = Monitor(service.feature_columns, service.ranges)
    task = service.run.task
    app = FastAPI(title="ALFIA risk service", version="1",
                  description=f"P({task.outcome}) of ICU stays, {task.title}, with explanations. "
                              "Decision support only.")
    app.state.service = service
    app.state.monitor = monitor
    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes)  # inside `measure`: 413s are counted too

    @app.middleware("http")
    async def measure(request: Request, call_next):
        start = time.perf_counter()
        path = request.url.path if request.url.path in KNOWN_PATHS else "other"
        try:
            response = await call_next(request)
        except Exception as exc:  # an unforeseen fault, answered 500; its message may quote patient values, so
            # only its type is logged
            log.error("request to %s failed: %s", path, type(exc).__name__)
            response = JSONResponse({"detail": "internal error; the request was not scored"}, status_code=500)
        seconds = time.perf_counter() - start
        monitor.requests.labels(path, str(response.status_code)).inc()
        monitor.latency.labels(path).observe(seconds)
        log.info("%s %s %d %.1f ms", request.method, path, response.status_code, 1000 * seconds)
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError):
        # the reason and where, without echoing the submitted values back
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
                  for e in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def unreadable(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 400:  # FastAPI's "error parsing the body" (e.g. bytes that are not UTF-8): bad input
            return JSONResponse({"detail": [{"loc": ["body"], "msg": "the body is not readable JSON (UTF-8)",
                                             "type": "json_invalid"}]}, status_code=422)
        return await http_exception_handler(request, exc)

    @app.exception_handler(AlfiaError)
    async def refused(_request: Request, exc: AlfiaError):
        return JSONResponse({"detail": [{"loc": ["body"], "msg": str(exc), "type": "refused"}]}, status_code=422)

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/v1/model")
    async def model_card() -> dict:
        """A machine-readable model card: backbone, schema, training cohort, metrics with CIs, threshold,
        bands, limits, versions."""
        return service.model_card()

    @app.get("/v1/metrics", response_class=Response)
    async def metrics() -> Response:
        return Response(generate_latest(monitor.registry), media_type=CONTENT_TYPE_LATEST)

    @app.post("/v1/predict", response_model=PredictResponse,
              responses={413: {"model": TooLarge, "description": "the body is larger than the service takes"},
                         422: {"model": Refused, "description": "refused: where and why"}})
    async def predict(body: PredictRequest) -> dict:  # type: ignore[valid-type]
        """Score each stay: warnings when it lies outside the training data, probability, risk band, layer
        weights and attended words; with ``explain``, each variable's effect when left out."""
        jobs = []  # (stay, its record or None, its text, (variable, text without it) pairs)
        for stay in body.stays:
            if getattr(stay, "record", None) is not None:
                record = stay.record.model_dump()
                monitor.observe_record(record)
                occluded = service.occluded_texts(record) if body.explain else []
                jobs.append((stay, record, service.text_of(record), occluded))
            else:
                jobs.append((stay, None, stay.text, []))
        warned = service.warnings([record for _, record, _, _ in jobs], [text for _, _, text, _ in jobs])
        texts = [t for _, _, text, occ in jobs for t in (text, *(o for _, o in occ))]
        scored = await asyncio.wrap_future(service.batcher.submit(texts))
        results, at = [], 0
        for (stay, record, text, occluded), warnings in zip(jobs, warned, strict=True):
            main, others = scored[at], scored[at + 1:at + 1 + len(occluded)]
            at += 1 + len(occluded)
            result = service.result(stay.stay_id, text, main, warnings)
            monitor.observe_warnings(warnings)
            if body.explain and record is not None:
                result["explanation"] = service.explanation(record, main.probability, occluded, others)
            monitor.stays.labels(result["band"], "record" if record is not None else "text").inc()
            results.append(result)
        return {"threshold": service.run.threshold, "results": results}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse(resources.files("alfia.serving").joinpath("page.html").read_text())

    return app
