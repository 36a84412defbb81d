"""The route table: every route declared once with its access rule and
request model, registered on Klein, and listed for the OpenAPI document.

A handler is ``async def handler(call: Call) -> Reply``. The wrapper here
authenticates, parses and validates before it runs, and turns whatever it
raises into the error envelope.
"""

from __future__ import annotations

from collections.abc import Awaitable, Generator, Mapping, Sequence
from typing import Any, Callable, Optional, Union

import attr
from bson import ObjectId
from bson.errors import InvalidId
from klein import Klein
from klein.resource import KleinResource
from pydantic import BaseModel, ValidationError
from twisted.internet import defer
from twisted.internet.defer import CancelledError, Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from twisted.web.server import NOT_DONE_YET
from werkzeug.exceptions import MethodNotAllowed as RoutingMethodNotAllowed
from werkzeug.exceptions import NotFound as RoutingNotFound

from crackershop.app.forms import StreamingForm, UploadedFile
from crackershop.app.http import (
    apply_standard_headers,
    check_field_names,
    is_urlencoded,
    query_args,
    read_json_body,
    read_urlencoded,
    render,
    render_error,
)
from crackershop.errors import (
    DATABASE_RETRY_AFTER,
    Forbidden,
    MethodNotAllowed,
    NotFound,
    ServiceUnavailable,
    ShopError,
    UnsupportedMediaType,
    ValidationFailed,
)

log = Logger()

ACCESS = ("public", "optional", "user", "admin")
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Which rate limiters count a route (crackershop.ratelimit.guard reads them):
# "exempt": none (the probes and metrics); "standard": the global limiter,
# and the writes limiter for a write; "auth": those and the auth limiter,
# which counts failures, for every route where a password, a reset token or
# a sign-in credential can be guessed.
RATE_CLASSES = ("exempt", "standard", "auth")


@attr.s(auto_attribs=True, frozen=True)
class Reply:
    """A response: a JSON body, or raw bytes when ``content_type`` is set."""

    body: Any
    status: int = 200
    headers: Mapping[str, str] = attr.Factory(dict)
    content_type: Optional[str] = None


def ok(data: Any, status: int = 200, **extra: Any) -> Reply:
    return Reply({"success": True, **extra, "data": data}, status)


def paginated(items: list[Any], total: int, page: int, limit: int) -> Reply:
    pages = -(-total // limit) if limit else 0
    return Reply(
        {
            "success": True,
            "count": len(items),
            "total": total,
            "pages": pages,
            "currentPage": page,
            "data": items,
        }
    )


@attr.s(auto_attribs=True)
class Call:
    """What a handler gets: the request, the caller and the validated input."""

    request: IRequest
    params: Mapping[str, str]
    user: Optional[dict[str, Any]] = None
    body: Any = None
    files: dict[str, list[UploadedFile]] = attr.Factory(dict)
    _args: Optional[Mapping[str, str]] = None

    @property
    def args(self) -> Mapping[str, str]:
        if self._args is None:
            self._args = query_args(self.request)
        return self._args

    def object_id(self, name: str = "id", what: str = "Resource") -> ObjectId:
        """The path parameter as an ObjectId; a malformed id is a 404."""
        return parse_object_id(self.params.get(name, ""), what)

    @property
    def is_admin(self) -> bool:
        return bool(self.user and self.user.get("role") == "admin")

    def require_user(self) -> dict[str, Any]:
        assert self.user is not None, "route declared without user access"
        return self.user


def parse_object_id(value: Any, what: str = "Resource") -> ObjectId:
    if isinstance(value, str) and len(value) == 24:
        try:
            return ObjectId(value)
        except (InvalidId, TypeError):
            pass
    raise NotFound(f"{what} not found")


Handler = Callable[[Call], Awaitable[Reply]]


@attr.s(auto_attribs=True, frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    summary: str
    # the operationId of the document, as a person would name the call
    operation: str = ""
    access: str = "public"
    body: Optional[type[BaseModel]] = None
    # the JSON a success answers (crackershop.app.responses), with its statuses
    response: Optional[type[BaseModel]] = None
    success: Sequence[int] = (200,)
    tag: str = ""
    query: Sequence[str] = ()
    # request headers the route reads (for the document), with what they do
    headers: Mapping[str, str] = attr.Factory(dict)
    # multipart/form-data file fields this route accepts, with how many each
    files: Mapping[str, int] = attr.Factory(dict)
    # error statuses beyond those its access and body imply (for the document)
    statuses: Sequence[int] = ()
    # media types of a success that is not JSON (for the document)
    produces: Sequence[str] = ()
    # one of RATE_CLASSES
    rate: str = "standard"

    @property
    def limiters(self) -> tuple[str, ...]:
        """The names of the limiters that count this route, in order."""
        if self.rate == "exempt":
            return ()
        names = ["global"]
        if self.method in WRITE_METHODS:
            names.append("writes")
        if self.rate == "auth":
            names.append("auth")
        return tuple(names)


# pydantic's problems, phrased to follow a field's name ("Password must ...")
PROBLEMS: dict[str, str] = {
    "missing": "is required",
    "extra_forbidden": "is not a field this request takes",
    "string_too_long": "must be at most {max_length} characters",
    "too_long": "must have at most {max_length} items",
    "too_short": "must have at least {min_length} item(s)",
    "string_pattern_mismatch": "is not in the expected format",
    "string_type": "must be text",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "list_type": "must be a list",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "greater_than_equal": "must be at least {ge}",
    "less_than_equal": "must be at most {le}",
    "greater_than": "must be more than {gt}",
    "less_than": "must be less than {lt}",
}
# fields whose format a pattern checks, said in words
FORMATS = {
    "mobileNumber": "must be a mobile number of 10 to 15 digits",
    "pincode": "must be a 6-digit PIN code",
}


def _problem(problem: Mapping[str, Any], field: str) -> str:
    kind = problem["type"]
    ctx = problem.get("ctx") or {}
    if kind == "string_too_short":
        least = int(ctx.get("min_length", 1))
        return "is required" if least <= 1 else f"must be at least {least} characters"
    if kind == "string_pattern_mismatch":
        if field in FORMATS:
            return FORMATS[field]
        if "0-9a-fA-F" in str(ctx.get("pattern", "")):
            return "must be an id (24 hexadecimal characters)"
    if kind == "literal_error":
        return "must be one of " + str(ctx.get("expected", "")).replace("'", "")
    if kind in PROBLEMS:
        try:
            return PROBLEMS[kind].format(**ctx)
        except (KeyError, IndexError):
            pass
    return str(problem["msg"]).replace("Value error, ", "")


def validation_details(error: ValidationError) -> dict[str, str]:
    details: dict[str, str] = {}
    for problem in error.errors():
        loc = [str(p) for p in problem["loc"]]
        where = ".".join(loc) or "body"
        field = next((p for p in reversed(loc) if not p.isdigit()), "")
        details.setdefault(where, _problem(problem, field))
    return details


def validate(model: type[BaseModel], data: Mapping[str, Any], strict: bool = True) -> Any:
    try:
        return model.model_validate(data, strict=strict)
    except ValidationError as e:
        raise ValidationFailed(None, validation_details(e)) from None


Guard = Callable[[IRequest, Route], Awaitable[None]]


class Router:
    """Registers routes on a Klein app and keeps the table."""

    def __init__(
        self,
        app: Klein,
        authenticate: Callable[[IRequest, bool], Awaitable[Optional[dict[str, Any]]]],
        guards: Sequence[Guard] = (),
        clock: Optional[IReactorTime] = None,
        timeout: Optional[float] = None,
    ) -> None:
        self.app = app
        self.authenticate = authenticate
        self.guards = list(guards)
        # Each request is handled within ``timeout`` seconds or answered 503
        # with its work cancelled.
        self.clock = clock
        self.timeout = timeout
        self.routes: list[Route] = []
        # Klein endpoint name -> route, for ShopResource's direct dispatch;
        # and the routes without parameters by exact path and method (the
        # URL map would choose the same: a fixed segment wins over a parameter)
        self.endpoints: dict[str, Route] = {}
        self.fixed: dict[str, dict[bytes, Route]] = {}
        app.handle_errors(RoutingNotFound)(self._not_found)
        app.handle_errors(RoutingMethodNotAllowed)(self._not_allowed)

    def add(self, route: Route) -> None:
        if route.access not in ACCESS:
            raise ValueError(f"unknown access {route.access!r}")
        if route.rate not in RATE_CLASSES:
            raise ValueError(f"unknown rate class {route.rate!r}")
        self.routes.append(route)
        klein_path = route.path.replace("{", "<").replace("}", ">")
        endpoint = f"{route.method} {route.path}"
        self.endpoints[endpoint] = route
        if "{" not in route.path:
            methods = self.fixed.setdefault(route.path, {})
            methods[route.method.encode("ascii")] = route
            if route.method == "GET":
                methods.setdefault(b"HEAD", route)

        def serve(request: IRequest, **params: str) -> Deferred[bytes]:
            result = self.dispatch(route, request, params)
            return succeed(result) if isinstance(result, bytes) else result

        self.app.route(klein_path, methods=[route.method], endpoint=endpoint, strict_slashes=False)(
            serve
        )

    def dispatch(
        self, route: Route, request: IRequest, params: Mapping[str, str]
    ) -> Union[bytes, Deferred[bytes]]:
        """Serve ``request`` with ``route``: the body at once when nothing
        it awaits is pending (most requests: the catalogue cache, the
        in-process limiter, the probes), else a Deferred of it, cancelled
        and answered 503 after the request deadline."""
        coroutine = self._serve(route, request, params)
        try:
            awaited = coroutine.send(None)
        except StopIteration as done:
            body: bytes = done.value
            return body
        d: Deferred[bytes] = Deferred.fromCoroutine(_resume(coroutine, awaited))
        if self.timeout is None or self.clock is None:
            return d
        timeout = self.timeout

        def too_long(failure: Failure) -> bytes:
            failure.trap(defer.TimeoutError)
            log.warn(
                "{method} {path} took longer than {timeout}s and was cancelled",
                method=route.method,
                path=route.path,
                timeout=timeout,
            )
            apply_standard_headers(request)
            error = ServiceUnavailable(
                "The request took too long and was cancelled",
                headers={"Retry-After": str(DATABASE_RETRY_AFTER)},
            )
            return render_error(request, error)

        d.addTimeout(timeout, self.clock)
        d.addErrback(too_long)
        return d

    async def _serve(self, route: Route, request: IRequest, params: Mapping[str, str]) -> bytes:
        apply_standard_headers(request)
        request.route_template = route.path  # type: ignore[attr-defined]  # for metrics
        try:
            for guard in self.guards:
                await guard(request, route)
            call = Call(request, params)
            if route.access != "public":
                call.user = await self.authenticate(request, route.access != "optional")
            if route.access == "admin" and not call.is_admin:
                raise Forbidden("Admin access required")
            if route.body is not None:
                self._read_body(route, request, call)
            reply = await route.handler(call)
        except ShopError as error:
            return render_error(request, error)
        except CancelledError:
            raise
        except Exception:
            log.failure("unhandled error in {method} {path}", method=route.method, path=route.path)
            return render_error(request, ShopError("Internal server error"))
        for name, value in reply.headers.items():
            request.setHeader(name.encode("ascii"), value.encode("ascii"))
        if reply.content_type is not None:
            request.setResponseCode(reply.status)
            request.setHeader(b"content-type", reply.content_type.encode("ascii"))
            raw: bytes = reply.body
            return raw
        return render(request, reply.status, reply.body)

    @staticmethod
    def _read_body(route: Route, request: IRequest, call: Call) -> None:
        """JSON, or (where the route takes files) the app's multipart form,
        whose text fields are converted as the app sends them."""
        form: Optional[StreamingForm] = getattr(request, "form", None)
        if form is None and route.files and is_urlencoded(request):
            values = read_urlencoded(request)
            check_field_names(values)
            call.body = validate(route.body, values, strict=False)  # type: ignore[arg-type]
            return
        if form is None:
            call.body = validate(route.body, read_json_body(request))  # type: ignore[arg-type]
            return
        if not route.files:
            raise UnsupportedMediaType("Request body must be JSON (Content-Type: application/json)")
        form.check()
        for upload in form.files:
            allowed = route.files.get(upload.field)
            if allowed is None:
                raise ValidationFailed(
                    "Unexpected file", {upload.field: "no file is expected here"}
                )
            call.files.setdefault(upload.field, []).append(upload)
            if len(call.files[upload.field]) > allowed:
                raise ValidationFailed(
                    "Too many files", {upload.field: f"at most {allowed} file(s)"}
                )
        values = form.values()
        check_field_names(values)
        call.body = validate(route.body, values, strict=False)  # type: ignore[arg-type]

    def _not_found(self, request: IRequest, failure: Failure) -> bytes:
        apply_standard_headers(request)
        path = request.path.decode("utf-8", "replace")
        return render_error(request, NotFound(f"Route {path} not found"))

    def _not_allowed(self, request: IRequest, failure: Failure) -> bytes:
        apply_standard_headers(request)
        allowed = getattr(failure.value, "valid_methods", None) or []
        error = MethodNotAllowed(
            f"Method {request.method.decode('ascii', 'replace')} not allowed here",
            headers={"Allow": ", ".join(sorted(allowed))},
        )
        return render_error(request, error)


_NONE: dict[bytes, Route] = {}


def _resume(coroutine: Any, awaited: Any) -> Generator[Any, Any, Any]:
    """Carry on a coroutine that has already run up to its first ``await``
    of ``awaited``, as Twisted's inlineCallbacks drives it: results are sent
    in, failures (a cancellation included) thrown in."""
    while True:
        try:
            value = yield awaited
        except GeneratorExit:
            coroutine.close()
            raise
        except BaseException as error:
            try:
                awaited = coroutine.throw(error)
            except StopIteration as done:
                return done.value
        else:
            try:
                awaited = coroutine.send(value)
            except StopIteration as done:
                return done.value


class ShopResource(KleinResource):  # type: ignore[misc]
    """Klein's resource, dispatching a matched route straight to the
    router: one URL match on a shared adapter and no Deferred when the
    answer is ready at once, so a small request costs about what
    twisted.web itself costs. Anything Klein answers itself (no route, a
    method not allowed, a redirect) goes through Klein unchanged; a URL
    that is not UTF-8 is answered with the JSON envelope instead of Klein's
    plain-text page."""

    def __init__(self, app: Klein) -> None:
        super().__init__(app)
        self._router: Optional[Router] = getattr(app, "router", None)
        # Matching needs only the path and the method (no host or scheme
        # rules), so one adapter serves every request.
        self._urls = app.url_map.bind("localhost")

    def render(self, request: IRequest) -> Any:
        segments = request.postpath
        try:
            for segment in request.prepath + segments:
                segment.decode("utf-8")
        except UnicodeDecodeError:
            apply_standard_headers(request)
            return render_error(request, NotFound("Route not found: the URL is not valid UTF-8"))
        router = self._router
        if router is None or request.prepath:
            return super().render(request)
        # the path as Klein gives it to the URL map
        path = b"/".join(segments).decode("utf-8") if segments else ""
        if not path.startswith("/"):
            path = "/" + path
        params: Mapping[str, str] = {}
        route = router.fixed.get(path, _NONE).get(request.method)
        if route is None:
            try:
                rule, params = self._urls.match(
                    path, request.method.decode("ascii", "replace"), return_rule=True
                )
                route = router.endpoints[rule.endpoint]
            except Exception:
                return super().render(request)
        result = router.dispatch(route, request, params)
        if isinstance(result, bytes):
            if request.method == b"HEAD":
                request.setHeader(b"content-length", b"%d" % len(result))
                return b""
            return result
        _answer_later(request, result)
        return NOT_DONE_YET


def _answer_later(request: Any, d: Deferred[bytes]) -> None:
    """Write the body when it is ready; cancel the work if the client goes
    away first (as Klein does)."""
    gone: list[bool] = []

    def lost(failure: Failure) -> None:
        gone.append(True)
        d.cancel()

    request.notifyFinish().addErrback(lost)

    def write(body: bytes) -> None:
        if gone or request.finished:
            return
        if not request.startedWriting and request.method != b"HEAD":
            request.setHeader(b"content-length", b"%d" % len(body))
        request.write(body)
        request.finish()

    def failed(failure: Failure) -> None:
        if gone and failure.check(CancelledError):
            return
        log.failure("unhandled error writing a response", failure)

    d.addCallback(write).addErrback(failed)


def resource(app: Klein) -> ShopResource:
    return ShopResource(app)
