"""The gRPC lab: the document's ``UserService``, completed and corrected, on the shared data.

``start()`` serves it in the background of the kernel::

    from labsupport import grpc_service
    server = grpc_service.start()
    stub = user_service_pb2_grpc.UserServiceStub(grpc_service.channel(server.url))
    stub.GetUser(user_service_pb2.GetUserRequest(id=101), timeout=2)

What it adds to the document's code: every RPC of the ``.proto`` implemented
(``UpdateUser`` and ``DeleteUser`` too), failures as status codes (NOT_FOUND,
INVALID_ARGUMENT with field violations as rich error details, ALREADY_EXISTS),
never INTERNAL or UNKNOWN for a client's mistake; opaque page tokens;
``HasField`` for the optional address; rows streamed as they are read, stopping
when the client cancels; a bulk create that never claims more than it made; a
bidirectional ``LookupUsers`` (``protos/user_lookup.proto``); an optional token
check in an interceptor (UNAUTHENTICATED); the health service; server
reflection; a graceful stop. It listens on 127.0.0.1 only, on a free port.
"""

from __future__ import annotations

import base64
import binascii
import collections
import contextlib
import datetime as dt
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent import futures
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from grpc_status import rpc_status
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from ... import codegen, database
from ...database import Address, User, db
from ...harness import LOG_LINES_KEPT, LOOPBACK, ServerHandle, grpc_server, register, stop_previous
from ...users import validate_user

# Compiled at run time, so the type checker knows these modules, their messages and base
# classes only as Any; annotations still name the message types, for the reader.
user_service_pb2: Any
user_service_pb2_grpc: Any
user_lookup_pb2: Any
user_lookup_pb2_grpc: Any
user_service_pb2, user_service_pb2_grpc = codegen.load("user_service")
user_lookup_pb2, user_lookup_pb2_grpc = codegen.load("user_lookup")
UserServiceBase: Any = user_service_pb2_grpc.UserServiceServicer
UserLookupBase: Any = user_lookup_pb2_grpc.UserLookupServicer

__all__ = [
    "start", "channel", "UserServicer", "UserLookupServicer", "lookup_users", "TokenAuth",
    "user_to_proto", "field_violations", "abort_with_field_violations", "SERVICE_NAMES",
    "user_service_pb2", "user_service_pb2_grpc", "user_lookup_pb2", "user_lookup_pb2_grpc",
]

USER_SERVICE = user_service_pb2.DESCRIPTOR.services_by_name["UserService"].full_name
USER_LOOKUP = user_lookup_pb2.DESCRIPTOR.services_by_name["UserLookup"].full_name
#: Every service ``start()`` serves, as reflection lists them.
SERVICE_NAMES = (USER_SERVICE, USER_LOOKUP, health.SERVICE_NAME, reflection.SERVICE_NAME)

DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 100
MAX_FILTER_LENGTH = 100
MAX_TAGS = 20
MAX_TAG_LENGTH = 50
MAX_BULK = 1000
STREAM_BATCH = 50
CANCEL_GRACE = 0.005  # seconds a bulk create waits to tell a cancel from the end of a stream
ADDRESS_LIMITS = {"street": 200, "city": 100, "country": 100, "postal_code": 20}
Violations = dict[str, str]


# --- messages -----------------------------------------------------------------

def user_to_proto(user: User) -> Any:
    """A database ``User`` as a ``user.User`` message (``created_at`` in Unix seconds, UTC)."""
    message = user_service_pb2.User(
        id=user.id, name=user.name, email=user.email,
        created_at=int(user.created_at.replace(tzinfo=dt.UTC).timestamp()),
        tags=user.tags or [],
    )
    if user.address is not None:
        message.address.CopyFrom(user_service_pb2.Address(**user.address.to_dict()))
    return message


def encode_page_token(last_id: int) -> str:
    """An opaque page token: the id of the last user of the page, which clients cannot edit
    by accident into a different query."""
    return base64.urlsafe_b64encode(f"after:{last_id}".encode()).decode().rstrip("=")


def decode_page_token(token: str) -> int | None:
    """The id a page token stands for, or None if this server never issued it."""
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    prefix, _, number = text.partition(":")
    if prefix != "after" or not number.isdigit() or len(number) > 18:
        return None
    return int(number)


# --- rich errors --------------------------------------------------------------

def abort_with_field_violations(context: grpc.ServicerContext, violations: Violations) -> None:
    """Abort with INVALID_ARGUMENT and a ``google.rpc.BadRequest`` naming each bad field."""
    bad_request = error_details_pb2.BadRequest(field_violations=[
        error_details_pb2.BadRequest.FieldViolation(field=field, description=description)
        for field, description in violations.items()
    ])
    detail = any_pb2.Any()
    detail.Pack(bad_request)
    summary = "; ".join(f"{field}: {description}" for field, description in violations.items())
    status = status_pb2.Status(
        code=code_pb2.INVALID_ARGUMENT, message=f"invalid request: {summary}", details=[detail]
    )
    context.abort_with_status(rpc_status.to_status(status))


def field_violations(error: grpc.RpcError) -> Violations:
    """The field violations an INVALID_ARGUMENT carries as rich error details, if any."""
    status = rpc_status.from_call(error)
    violations: Violations = {}
    for detail in status.details if status is not None else []:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            for violation in bad_request.field_violations:
                violations[violation.field] = violation.description
    return violations


def _text_violations(fields: dict[str, str], limits: dict[str, int], prefix: str) -> Violations:
    return {
        f"{prefix}{name}": f"must be at most {limit} characters"
        for name, limit in limits.items() if len(fields[name]) > limit
    }


def filter_violations(text: str) -> Violations:
    """What is wrong with a name filter: too long, or a NUL, which SQLite's LIKE reads as the
    end of the pattern (so "\\0" would match every user)."""
    if len(text) > MAX_FILTER_LENGTH:
        return {"filter": f"must be at most {MAX_FILTER_LENGTH} characters"}
    if "\0" in text:
        return {"filter": "must not contain NUL characters"}
    return {}


def validate_user_fields(request: Any, *, partial: bool = False) -> Violations:
    """Field violations of a Create/UpdateUserRequest (the REST lab's rules, plus the rest).

    With ``partial`` (UpdateUser), an empty name or email means "leave it as it is":
    proto3 strings cannot say "not set" apart from "".
    """
    given = {f: getattr(request, f) for f in ("name", "email")
             if getattr(request, f) or not partial}
    violations = {field: messages[0] for field, messages in validate_user(given, partial).items()}
    if request.HasField("address"):
        address = {f: getattr(request.address, f) for f in ADDRESS_LIMITS}
        violations |= _text_violations(address, ADDRESS_LIMITS, prefix="address.")
    if len(request.tags) > MAX_TAGS:
        violations["tags"] = f"at most {MAX_TAGS} tags, got {len(request.tags)}"
    for index, tag in enumerate(request.tags):
        if not tag.strip() or len(tag) > MAX_TAG_LENGTH:
            violations[f"tags[{index}]"] = f"must be 1 to {MAX_TAG_LENGTH} characters, not blank"
            break
    return violations


# --- the services ---------------------------------------------------------------

def _log(context: grpc.ServicerContext, line: str) -> None:
    log = getattr(context, "lab_log", None)
    if log is not None:
        log.append(line)


def _address_of(request: Any) -> Address:
    return Address(**{field: getattr(request.address, field) for field in ADDRESS_LIMITS})


def _new_user(request: Any) -> User:
    """A ``User`` from a valid CreateUserRequest; an address only if the client sent one."""
    user = User(name=request.name, email=request.email, tags=list(request.tags))
    if request.HasField("address"):  # not `if request.address:`, which is always true
        user.address = _address_of(request)
    return user


class UserServicer(UserServiceBase):
    """The document's ``UserServicer``, every RPC implemented, failures as status codes.

    ``success`` is still set on every answer, because clients written against the
    document's ``.proto`` (like its ``UserClient``) read it; ``error_message`` never is:
    a failure is a status code, and the message is empty.
    """

    def _find(self, user_id: int, context: grpc.ServicerContext) -> User:
        if user_id <= 0:
            abort_with_field_violations(context, {"id": f"must be a positive id, got {user_id}"})
        user = db.session.get(User, user_id)
        if user is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"user {user_id} not found")
        return user

    def _email_taken(self, email: str, context: grpc.ServicerContext, *, by_other: int = 0) -> None:
        owner = db.session.scalar(select(User.id).where(User.email == email))
        if owner is not None and owner != by_other:
            context.abort(grpc.StatusCode.ALREADY_EXISTS, f"a user with email {email} exists")

    def _commit(self, context: grpc.ServicerContext, conflict: str) -> None:
        try:
            db.session.commit()
        except IntegrityError:  # a concurrent call took the email between check and commit
            db.session.rollback()
            context.abort(grpc.StatusCode.ALREADY_EXISTS, conflict)

    @staticmethod
    def _cancelled(context: grpc.ServicerContext, ended: threading.Event) -> bool:
        """Whether the client cancelled a stream that the request iterator saw end.

        To gRPC Python's request iterator a cancel first looks like a normal end of
        stream; the cancel itself is processed a moment later. A completed call ends
        only after the handler returns, so the call ending within a few milliseconds
        means a cancel.
        """
        return ended.wait(CANCEL_GRACE) or not context.is_active()

    def GetUser(self, request, context):
        user = self._find(request.id, context)
        return user_service_pb2.UserResponse(user=user_to_proto(user), success=True)

    def ListUsers(self, request, context):
        violations: Violations = {}
        if request.page_size < 0:
            violations["page_size"] = f"must not be negative, got {request.page_size}"
        after = decode_page_token(request.page_token) if request.page_token else 0
        if after is None:
            violations["page_token"] = "is not a token this server issued; pass the " \
                                       "next_page_token of the previous page, or nothing"
        violations |= filter_violations(request.filter)
        if violations:
            abort_with_field_violations(context, violations)
        page_size = min(request.page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        matching = select(User)
        if request.filter:
            matching = matching.where(User.name.contains(request.filter, autoescape=True))
        total = db.session.scalar(select(func.count()).select_from(matching.subquery()))
        rows = list(db.session.scalars(
            matching.where(User.id > after).order_by(User.id).limit(page_size + 1)
            .options(selectinload(User.address))  # one query for the page's addresses, not N
        ))
        users, more = rows[:page_size], len(rows) > page_size
        return user_service_pb2.ListUsersResponse(
            users=[user_to_proto(user) for user in users],
            next_page_token=encode_page_token(users[-1].id) if more else "",
            total_count=total or 0,
        )

    def CreateUser(self, request, context):
        violations = validate_user_fields(request)
        if violations:
            abort_with_field_violations(context, violations)
        self._email_taken(request.email, context)
        user = _new_user(request)
        db.session.add(user)
        self._commit(context, f"a user with email {request.email} exists")
        _log(context, f"CreateUser: created user {user.id}")
        return user_service_pb2.UserResponse(user=user_to_proto(user), success=True)

    def UpdateUser(self, request, context):
        violations = validate_user_fields(request, partial=True)
        if violations:
            abort_with_field_violations(context, violations)
        user = self._find(request.id, context)
        if request.email:
            self._email_taken(request.email, context, by_other=user.id)
            user.email = request.email
        if request.name:
            user.name = request.name
        if request.tags:
            user.tags = list(request.tags)
        if request.HasField("address"):
            user.address = _address_of(request)
        self._commit(context, f"a user with email {user.email} exists")
        return user_service_pb2.UserResponse(user=user_to_proto(user), success=True)

    def DeleteUser(self, request, context):
        user = self._find(request.id, context)
        db.session.delete(user)
        db.session.commit()
        return user_service_pb2.DeleteUserResponse(success=True)

    def StreamUsers(self, request, context):
        """Server streaming: rows are read a batch at a time and sent as they are read;
        when the client cancels (or its deadline passes) no further batch is read."""
        violations = filter_violations(request.filter)
        if violations:
            abort_with_field_violations(context, violations)
        matching = select(User).order_by(User.id).limit(STREAM_BATCH).options(
            selectinload(User.address))  # one query per batch for the addresses, not one a row
        if request.filter:
            matching = matching.where(User.name.contains(request.filter, autoescape=True))
        sent, read, after, finished = 0, 0, 0, False
        try:
            while context.is_active():
                batch = list(db.session.scalars(matching.where(User.id > after)))
                messages = [user_service_pb2.UserResponse(user=user_to_proto(user), success=True)
                            for user in batch]
                after = batch[-1].id if batch else after
                db.session.rollback()  # no transaction held open while the client reads
                read += len(batch)
                for message in messages:
                    sent += 1
                    yield message
                if len(batch) < STREAM_BATCH:
                    finished = True
                    return
        finally:
            _log(context, f"StreamUsers: sent all {sent} users" if finished else
                 f"StreamUsers: the client went away after {sent} users; {read} rows read, "
                 "no more will be")

    def BulkCreateUsers(self, request_iterator, context):
        """Client streaming: every valid user is created, in one transaction at the end;
        each refused one is named in ``errors``. Nothing is created if the stream fails."""
        errors: list[str] = []
        emails: set[str] = set()
        ended = threading.Event()
        context.add_callback(ended.set)  # called when the call ends: at once on a cancel
        for index, request in enumerate(request_iterator):
            if index >= MAX_BULK:
                db.session.rollback()
                abort_with_field_violations(
                    context, {"requests": f"at most {MAX_BULK} users per call"})
            violations = validate_user_fields(request)
            taken = request.email in emails or db.session.scalar(
                select(User.id).where(User.email == request.email)) is not None
            if violations or taken:
                reasons = "; ".join(f"{f}: {d}" for f, d in violations.items()) or \
                    f"a user with email {request.email} exists"
                errors.append(f"#{index} ({request.email or 'no email'}): {reasons}")
                continue
            emails.add(request.email)
            db.session.add(_new_user(request))
        if self._cancelled(context, ended):
            db.session.rollback()  # the client cancelled: its stream was not complete
            return user_service_pb2.BulkCreateUsersResponse()
        self._commit(context, "another call took one of these emails meanwhile; none were created")
        _log(context, f"BulkCreateUsers: created {len(emails)}, refused {len(errors)}")
        return user_service_pb2.BulkCreateUsersResponse(created_count=len(emails), errors=errors)


def lookup_users(request_iterator: Iterator[user_service_pb2.GetUserRequest],
                 context: grpc.ServicerContext) -> Iterator[user_service_pb2.UserResponse]:
    """Bidirectional streaming: answer each id as soon as it arrives, on the same stream.

    An unknown id is answered in-stream (``success=False``): aborting with NOT_FOUND
    would end the stream, and every lookup after it with it.
    """
    for request in request_iterator:
        user = db.session.get(User, request.id) if request.id > 0 else None
        if user is None:
            yield user_service_pb2.UserResponse(
                success=False, error_message=f"user {request.id} not found")
        else:
            yield user_service_pb2.UserResponse(user=user_to_proto(user), success=True)
        db.session.rollback()  # no transaction held open while waiting for the next id


class UserLookupServicer(UserLookupBase):
    """``user.UserLookup`` of ``protos/user_lookup.proto``, answered by ``lookup``."""

    def __init__(self, lookup: Callable = lookup_users) -> None:
        self.lookup = lookup

    def LookupUsers(self, request_iterator, context):
        yield from self.lookup(request_iterator, context)


# --- interceptors ---------------------------------------------------------------

_KINDS = ("unary_unary", "unary_stream", "stream_unary", "stream_stream")


def _rebuild(handler: grpc.RpcMethodHandler, make: Callable[[Callable], Callable]):
    """A copy of ``handler`` whose behaviour is ``make(behaviour)``."""
    for kind in _KINDS:
        behaviour = getattr(handler, kind)
        if behaviour is not None:
            return getattr(grpc, f"{kind}_rpc_method_handler")(
                make(behaviour),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
    return handler


class _Housekeeping(grpc.ServerInterceptor):
    """Per RPC: echo the client's ``x-request-id`` (or make one) as initial metadata,
    give the context the server's log, and remove the thread's database session at the
    end (the thread pool reuses threads, and a session must not outlive its RPC)."""

    def __init__(self, log: collections.deque[str]) -> None:
        self.log = log

    @contextlib.contextmanager
    def _around(self, context: grpc.ServicerContext) -> Iterator[None]:
        received = dict(context.invocation_metadata())
        context.send_initial_metadata([("x-request-id", received.get("x-request-id")
                                        or uuid.uuid4().hex[:12])])
        context.lab_log = self.log
        try:
            yield
        finally:
            db.session.remove()

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None:
            return None

        def make(behaviour):
            if handler.response_streaming:
                def streaming(request, context):
                    with self._around(context):
                        yield from behaviour(request, context)
                return streaming

            def unary(request, context):
                with self._around(context):
                    return behaviour(request, context)
            return unary

        return _rebuild(handler, make)


class TokenAuth(grpc.ServerInterceptor):
    """Refuse any call without ``authorization: Bearer <token>`` metadata (UNAUTHENTICATED).

    Health checks and reflection stay open, as load balancers and tools call them.
    """

    OPEN = (f"/{health.SERVICE_NAME}/", f"/{reflection.SERVICE_NAME}/")

    def __init__(self, token: str) -> None:
        self.expected = f"Bearer {token}"

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None or handler_call_details.method.startswith(self.OPEN):
            return handler
        metadata = dict(handler_call_details.invocation_metadata or ())
        if metadata.get("authorization") == self.expected:
            return handler
        reason = "invalid token" if "authorization" in metadata else \
            "missing 'authorization: Bearer <token>' metadata"

        def refuse(behaviour):
            def abort(request, context):
                context.abort(grpc.StatusCode.UNAUTHENTICATED, reason)
            return abort

        return _rebuild(handler, refuse)


# --- server and client ------------------------------------------------------------

def start(
    *,
    fresh_data: bool = True,
    name: str = "grpc",
    servicer: Any = None,
    lookup: Callable = lookup_users,
    token: str | None = None,
    interceptors: Sequence[grpc.ServerInterceptor] = (),
    grace: float = 1.0,
    max_workers: int = 8,
) -> ServerHandle:
    """Serve ``UserService`` (and ``UserLookup``, health, reflection) on 127.0.0.1:<free port>.

    ``servicer`` replaces the lab's ``UserServicer`` (the notebook runs the document's
    own) and ``lookup`` the function behind ``UserLookup.LookupUsers`` (exercises plug
    the learner's code in there); ``token`` requires ``authorization: Bearer <token>``
    metadata on every call; ``interceptors`` run after that check. ``stop()`` lets calls
    in flight finish for ``grace`` seconds, then cancels them. Re-running replaces the
    server of that ``name``.
    """
    stop_previous(name)
    database.ready(fresh_data)
    log: collections.deque[str] = collections.deque(maxlen=LOG_LINES_KEPT)
    chain: list[grpc.ServerInterceptor] = [_Housekeeping(log)]
    if token is not None:
        chain.append(TokenAuth(token))
    server = grpc_server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=f"{name}-rpc"),
        interceptors=[*chain, *interceptors],
        options=[("grpc.so_reuseport", 0)],
    )
    servicer = servicer if servicer is not None else UserServicer()
    user_service_pb2_grpc.add_UserServiceServicer_to_server(servicer, server)
    user_lookup_pb2_grpc.add_UserLookupServicer_to_server(UserLookupServicer(lookup), server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(SERVICE_NAMES, server)
    port = server.add_insecure_port(f"{LOOPBACK}:0")
    server.start()
    for service in ("", USER_SERVICE, USER_LOOKUP):
        health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)

    def stop() -> None:
        health_servicer.enter_graceful_shutdown()  # health checks now say NOT_SERVING
        server.stop(grace).wait(grace + 5)
        log.append(f"stopped (grace {grace:g} s)")

    log.append(f"serving {', '.join(SERVICE_NAMES)} on {LOOPBACK}:{port}")
    return register(ServerHandle(name, port, stop, scheme="grpc", log=log, app=servicer))


def channel(target: str, *, options: Sequence[tuple[str, Any]] = ()) -> grpc.Channel:
    """An insecure channel to ``target`` that never goes through an HTTP proxy."""
    return grpc.insecure_channel(target, options=[("grpc.enable_http_proxy", 0), *options])

