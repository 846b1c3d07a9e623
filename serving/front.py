"""A thin ASGI front for MLflow's scoring server: the same REST contract (/invocations, /ping, /health,
/version), but no answer ever repeats the request or shows internals.

MLflow's own handlers run before the model: for a body they cannot parse they answer with the body quoted
back (a 50 MB invalid JSON came back as 57 MB) or with a `stack_trace` field full of site-packages paths.
The front reads the whole request first, refuses what is too large (413), too slow to arrive (408), of an
unknown type (415), or at an unknown path (404) or method (405), JSON nested too deep to parse (400), and
JSON records that MLflow would cast before the model sees them (22.5 for `hr` would become 22); passes the
rest to MLflow's app unchanged; and replaces every error answer by a short one that names the problem
(serving/answers.py). Messages from the model's own record checks (serving/model.py) are kept: they name the
column, the rule and the record numbers, never the values. Whatever the body, the front never answers 500.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from serving.answers import RequestRefusedError, refusal_before_mlflow, safe_error

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger(__name__)

MODEL_PATH_ENV = "SERVING_MODEL_PATH"
MAX_REQUEST_BYTES_ENV = "SERVING_MAX_REQUEST_BYTES"
MAX_REQUEST_BYTES = 10 * 1024 * 1024  # about 40,000 JSON records; score larger files with `-e predict`
BODY_TIMEOUT_ENV = "SERVING_BODY_TIMEOUT_SECONDS"
BODY_TIMEOUT_SECONDS = 30.0  # to receive a whole body: MAX_REQUEST_BYTES needs about 3 Mbit/s
MAX_NESTING_DEPTH = 400  # records nest 3 levels; Python's json parser recurses once per level
ROUTES = {"/invocations": "POST", "/ping": "GET", "/health": "GET", "/version": "GET"}
# MLflow's scoring server's own content types (mlflow.pyfunc.scoring_server.CONTENT_TYPES).
CONTENT_TYPES = {"application/json": "JSON", "text/csv": "CSV", "application/vnd.apache.parquet": "Parquet"}


class GuardedScoringApp:
    """Wraps MLflow's scoring app (`inner`)."""

    def __init__(
        self,
        inner: ASGIApp,
        max_request_bytes: int = MAX_REQUEST_BYTES,
        body_timeout_seconds: float = BODY_TIMEOUT_SECONDS,
    ) -> None:
        self.inner, self.max_request_bytes = inner, max_request_bytes
        self.body_timeout_seconds = body_timeout_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan events
            await self.inner(scope, receive, send)
            return
        try:
            kind = self._check_route(scope)
            body = await self._read_body(scope, receive)
        except RequestRefusedError as refused:
            await _answer(send, refused.status, refused.code, refused.message)
            return
        except _ClientGoneError:
            log.info("a client went away before sending the whole request body")
            return
        refused = refusal_before_mlflow(kind, body, MAX_NESTING_DEPTH)
        if refused is not None:
            await _answer(send, refused.status, refused.code, refused.message)
            return
        await self.inner(scope, _replay(body, receive), _Guard(send, kind, body).send)

    def _check_route(self, scope: Scope) -> str:
        """The request's content kind ("JSON", "CSV", "Parquet"; "" for the GET routes)."""
        path, method = scope["path"], scope["method"]
        if path not in ROUTES:
            raise RequestRefusedError(404, "ENDPOINT_NOT_FOUND", f"no such endpoint; use {', '.join(ROUTES)}")
        if method != ROUTES[path]:
            raise RequestRefusedError(405, "METHOD_NOT_ALLOWED", f"{path} takes {ROUTES[path]} requests")
        if path != "/invocations":
            return ""
        content_type = _header(scope, b"content-type").split(";")[0].strip().lower()
        if content_type not in CONTENT_TYPES:
            raise RequestRefusedError(
                415, "UNSUPPORTED_MEDIA_TYPE", f"Content-Type must be one of {', '.join(CONTENT_TYPES)}"
            )
        return CONTENT_TYPES[content_type]

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        """The whole body, within the size and time limits."""
        declared = _header(scope, b"content-length")
        if declared.isdigit() and int(declared) > self.max_request_bytes:
            raise self._too_large()
        try:
            async with asyncio.timeout(self.body_timeout_seconds):
                return await self._receive_body(receive)
        except TimeoutError:
            explanation = (
                f"the request body did not arrive within {self.body_timeout_seconds:g} s; "
                "send it without pauses, or split it into smaller requests"
            )
            raise RequestRefusedError(408, "REQUEST_TIMEOUT", explanation) from None

    async def _receive_body(self, receive: Receive) -> bytes:
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _ClientGoneError
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_request_bytes:
                raise self._too_large()
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _too_large(self) -> RequestRefusedError:
        explanation = (
            f"the request is larger than {self.max_request_bytes:,} bytes; "
            "split it, or score a file with `mlflow run . -e predict`"
        )
        return RequestRefusedError(413, "REQUEST_TOO_LARGE", explanation)


class _ClientGoneError(Exception):
    """The client disconnected before it sent the whole body: there is no one left to answer."""


class _Guard:
    """Passes a success through; replaces an error answer by a short one of its own."""

    def __init__(self, send: Send, kind: str, body: bytes) -> None:
        self.downstream, self.kind, self.body = send, kind, body
        self.error_status: int | None = None
        self.error_body = bytearray()

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start" and message["status"] >= 400:
            self.error_status = message["status"]
            return
        if self.error_status is None:
            await self.downstream(message)
            return
        if message["type"] == "http.response.body":
            self.error_body += message.get("body", b"")[: 64 * 1024]  # enough to read MLflow's error code
            if not message.get("more_body", False):
                status, code, text = safe_error(
                    self.error_status, bytes(self.error_body), self.kind, self.body
                )
                await _answer(self.downstream, status, code, text)


async def _answer(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps({"error_code": code, "message": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 408:  # the server stops waiting for the body: it closes the connection (RFC 9110, 15.5.9)
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body already read, then the client's own events (a disconnect, when it comes)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return ""


def create_app() -> GuardedScoringApp:
    """The app `python -m serving` runs (uvicorn's factory): MLflow's scoring app for the model at
    $SERVING_MODEL_PATH, behind the front."""
    from mlflow.pyfunc import scoring_server  # noqa: PLC0415 - heavy; only the server process needs it

    model = scoring_server.load_model_with_mlflow_config(os.environ[MODEL_PATH_ENV])
    limit = int(os.environ.get(MAX_REQUEST_BYTES_ENV, MAX_REQUEST_BYTES))
    return GuardedScoringApp(
        scoring_server.init(model), max_request_bytes=limit, body_timeout_seconds=_body_timeout()
    )


def _body_timeout() -> float:
    """$SERVING_BODY_TIMEOUT_SECONDS, or BODY_TIMEOUT_SECONDS; anything but a positive number stops."""
    text = os.environ.get(BODY_TIMEOUT_ENV, str(BODY_TIMEOUT_SECONDS))
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not 0 < seconds < math.inf:
        raise SystemExit(f"error: {BODY_TIMEOUT_ENV} must be a positive number of seconds, not {text[:40]!r}")
    return seconds
