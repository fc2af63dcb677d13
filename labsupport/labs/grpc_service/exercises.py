"""Exercises of notebooks/03-grpc.ipynb, each checked through a live gRPC server."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import event, select

from ... import database
from ...database import Address, User, db
from ...engine import NotAttempted, Unmet, cases, exercise, expect
from . import server as grpc_service
from .server import (
    user_lookup_pb2_grpc,
    user_service_pb2,
    user_service_pb2_grpc,
    user_to_proto,
)

NOTEBOOK = "03-grpc"
CHECK_SERVER = "grpc-check"
#: An id no user has: the notebook adds thousands of users, so not 999.
MISSING_ID = 9_000_000_001


def _check_server(**options):
    """A server for one check, on the learner's current data; calls still running when the
    check ends get 0.2 s, not the usual second."""
    return grpc_service.start(name=CHECK_SERVER, fresh_data=False, grace=0.2, **options)


def _code(call, *args, **kwargs) -> grpc.StatusCode:
    try:
        call(*args, **kwargs)
    except grpc.RpcError as error:
        return error.code()
    return grpc.StatusCode.OK


def _name_of(user_id: int) -> str | None:
    user = db.session.get(User, user_id)
    name = user.name if user is not None else None
    db.session.remove()
    return name


def _email_of(user_id: int) -> str:
    email = db.session.get(User, user_id).email
    db.session.remove()
    return str(email)


def _user_ids() -> set[int]:
    database.ready(False)
    ids = set(db.session.scalars(select(User.id)))
    db.session.remove()
    return ids


def _rename(user_id: int, name: str | None) -> None:
    user = db.session.get(User, user_id)
    if user is not None and name is not None:
        user.name = name
        db.session.commit()
    db.session.remove()


def _delete_users_not_in(existing: set[int]) -> None:
    """Undo what a check created, so the learner's data stays as it was."""
    for user in db.session.scalars(select(User).where(User.id.not_in(existing))):
        db.session.delete(user)
    db.session.commit()
    db.session.remove()


# --- 1. a first call: a deadline, and NOT_FOUND is not an error -------------------------

def user_name(channel: grpc.Channel, user_id: int) -> str | None:
    """The name of user ``user_id``, asked with a 1 s deadline; None when the server answers
    NOT_FOUND. Any other failure (UNAVAILABLE, DEADLINE_EXCEEDED, ...) is raised."""
    stub = user_service_pb2_grpc.UserServiceStub(channel)
    try:
        response = stub.GetUser(user_service_pb2.GetUserRequest(id=user_id), timeout=1)
    except grpc.RpcError as error:
        if error.code() == grpc.StatusCode.NOT_FOUND:
            return None
        raise
    return response.user.name


class _Scripted(grpc_service.UserServicer):
    """GetUser fails as the plan says, one step per call, and notes when and with what
    deadline each call came; a "slow" step takes ``slow`` seconds."""

    def __init__(self, plan: list[str], slow: float = 1.2) -> None:
        self.plan = list(plan)
        self.slow = slow
        self.calls: list[tuple[float, float | None]] = []

    def GetUser(self, request, context):
        self.calls.append((time.monotonic(), context.time_remaining()))
        step = self.plan.pop(0) if self.plan else "ok"
        if step == "unavailable":
            context.abort(grpc.StatusCode.UNAVAILABLE, "the service is restarting")
        if step in grpc.StatusCode.__members__:
            context.abort(grpc.StatusCode[step], f"the check made GetUser fail with {step}")
        if step == "slow":
            time.sleep(self.slow)
        return super().GetUser(request, context)


def _run_plan(call_user, plan: list[str], user_id: int = 101, *, slow: float = 1.2,
              with_channel: bool = False):
    """Run the learner's ``(stub, user_id)`` function (``(channel, user_id)`` with
    ``with_channel``) against a server that follows ``plan``."""
    servicer = _Scripted(plan, slow)
    with _check_server(servicer=servicer) as server, \
            grpc_service.channel(server.url) as channel:
        target = channel if with_channel else user_service_pb2_grpc.UserServiceStub(channel)
        started = time.monotonic()
        try:
            outcome = call_user(target, user_id)
        except grpc.RpcError as error:
            outcome = error
        return outcome, servicer.calls, time.monotonic() - started


def _describe(outcome) -> str:
    if isinstance(outcome, grpc.RpcError):
        return f"raised {outcome.code().name}"
    return f"returned {type(outcome).__name__} {str(outcome)[:60]!r}"


FIRST_CALL_SLOW = 2.0


@exercise(
    "grpc.first-call",
    title="A first call: GetUser with a deadline; None on NOT_FOUND, other codes raised",
    notebook=NOTEBOOK,
    hints=[
        "user_service_pb2_grpc.UserServiceStub(channel) makes a stub; "
        "stub.GetUser(user_service_pb2.GetUserRequest(id=user_id), timeout=1) is the call, "
        "with its 1 s deadline.",
        "A failed call raises grpc.RpcError; error.code() is its status, e.g. "
        "grpc.StatusCode.NOT_FOUND.",
        "Return None for NOT_FOUND only, and `raise` anything else: UNAVAILABLE or "
        "DEADLINE_EXCEEDED say nothing about whether the user exists.",
    ],
    reference=user_name,
)
def check_first_call(user_name):
    draw = cases()
    user_id = draw.randrange(101, 126)
    outcome, calls, _ = _run_plan(user_name, [], user_id, with_channel=True)
    if outcome is None and not calls:
        raise NotAttempted("user_name returns None")
    expect(calls, "user_name never called GetUser")
    deadline = calls[0][1]
    expect(deadline is not None and deadline < 3600,  # no deadline: "forever"
           "GetUser arrived with no deadline: pass timeout=1 to the call")
    expect(deadline <= 1.5, f"the deadline should be 1 s; the call arrived with "
                            f"{deadline:.1f} s left")
    expected = _name_of(user_id)
    expect(outcome == expected, f"user {user_id} is {expected}: return the name "
                                f"(response.user.name); you {_describe(outcome)}")
    outcome, _, _ = _run_plan(user_name, [], user_id=MISSING_ID, with_channel=True)
    expect(outcome is None,
           f"user {MISSING_ID} does not exist, so the server answers NOT_FOUND: return None; "
           f"you {_describe(outcome)}")
    outcome, _, _ = _run_plan(user_name, ["unavailable"], with_channel=True)
    expect(isinstance(outcome, grpc.RpcError) and outcome.code() == grpc.StatusCode.UNAVAILABLE,
           "the server answered UNAVAILABLE, which says nothing about user 101: raise that "
           f"error (None is for NOT_FOUND only); you {_describe(outcome)}")
    other = draw.choice(["INTERNAL", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "UNKNOWN"])
    outcome, _, _ = _run_plan(user_name, [other], user_id, with_channel=True)
    expect(isinstance(outcome, grpc.RpcError) and outcome.code() == grpc.StatusCode[other],
           f"the server answered {other}, which says nothing about whether user {user_id} "
           f"exists: raise it (None is for NOT_FOUND only, every other code is raised); you "
           f"{_describe(outcome)}")
    outcome, _, elapsed = _run_plan(user_name, ["slow"], slow=FIRST_CALL_SLOW, with_channel=True)
    expect(isinstance(outcome, grpc.RpcError)
           and outcome.code() == grpc.StatusCode.DEADLINE_EXCEEDED,
           f"the server took {FIRST_CALL_SLOW:g} s to answer: a 1 s deadline ends the call with "
           f"DEADLINE_EXCEEDED, to be raised; you {_describe(outcome)} after {elapsed:.1f} s")
    return f"a 1 s deadline, the name of a user, None on NOT_FOUND, UNAVAILABLE, {other} and " \
        "DEADLINE_EXCEEDED raised"


# --- 2. status codes in a servicer method ------------------------------------------

def create_user(request: user_service_pb2.CreateUserRequest,
                context: grpc.ServicerContext) -> user_service_pb2.UserResponse:
    """CreateUser that reports failures as status codes and stores an address only if sent."""
    if not request.name.strip() or "@" not in request.email:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "name and a valid email are required")
    if db.session.scalar(select(User).where(User.email == request.email)) is not None:
        context.abort(grpc.StatusCode.ALREADY_EXISTS, f"a user with email {request.email} exists")
    user = User(name=request.name, email=request.email, tags=list(request.tags))
    if request.HasField("address"):
        user.address = Address(
            street=request.address.street, city=request.address.city,
            country=request.address.country, postal_code=request.address.postal_code,
        )
    db.session.add(user)
    db.session.commit()
    return user_service_pb2.UserResponse(user=user_to_proto(user), success=True)


@exercise(
    "grpc.status-codes",
    title="CreateUser: INVALID_ARGUMENT, ALREADY_EXISTS and HasField, never INTERNAL",
    notebook=NOTEBOOK,
    hints=[
        "context.abort(grpc.StatusCode.INVALID_ARGUMENT, 'why') ends the call with that "
        "status; nothing after it runs.",
        "Look the email up before inserting: a user with it already means ALREADY_EXISTS.",
        "`if request.address:` is always true; request.HasField('address') says whether the "
        "client sent one.",
    ],
    reference=create_user,
)
def check_status_codes(create_user):
    returned = []

    class Servicer(grpc_service.UserServicer):
        def CreateUser(self, request, context):
            returned.append(create_user(request, context))
            return returned[-1]

    existing = _user_ids()
    Request = user_service_pb2.CreateUserRequest
    servicer = Servicer()
    try:
        with _check_server(servicer=servicer) as server, \
                grpc_service.channel(server.url) as channel:
            stub = user_service_pb2_grpc.UserServiceStub(channel)
            try:
                created = stub.CreateUser(Request(
                    name="Eve", email="eve.check@example.com",
                    address=user_service_pb2.Address(city="Oslo", country="NO"),
                ), timeout=5)
            except grpc.RpcError as error:
                if returned == [None]:
                    raise NotAttempted("create_user returns None") from None
                raise Unmet(f"a valid CreateUser answered {error.code().name}: "
                            f"{error.details()}") from None
            expect(created.user.id and created.user.address.city == "Oslo",
                   f"a valid CreateUser should return the new user with its address, got "
                   f"{created.user!r}")
            plain = stub.CreateUser(Request(name="Nadia", email="nadia.check@example.com"),
                                    timeout=5).user
            expect(not plain.HasField("address"),
                   "a user created without an address came back with one (all fields empty): "
                   "`if request.address:` is always true; use HasField")
            before = _user_ids()
            for request, what in [(Request(email="x@example.com"), "an empty name"),
                                  (Request(name="Xavier"), "an empty email"),
                                  (Request(name="Xavier", email="nope"), "an email without @")]:
                code = _code(stub.CreateUser, request, timeout=5)
                expect(code == grpc.StatusCode.INVALID_ARGUMENT,
                       f"CreateUser with {what} answered {code.name}, expected INVALID_ARGUMENT")
            taken = _email_of(cases().choice(sorted(existing)))
            code = _code(stub.CreateUser, Request(name="Ada 2", email=taken), timeout=5)
            expect(code == grpc.StatusCode.ALREADY_EXISTS,
                   f"CreateUser with {taken}, an email already taken, answered {code.name}, "
                   "expected ALREADY_EXISTS")
            blank = cases().choice([" ", "   ", "\t", "\n "])
            code = _code(stub.CreateUser, Request(name=blank, email="x@example.com"), timeout=5)
            expect(code == grpc.StatusCode.INVALID_ARGUMENT,
                   f"CreateUser with a name of only whitespace {blank!r} answered {code.name}, "
                   "expected INVALID_ARGUMENT: a blank name is no name (strip before you check)")
            expect(_user_ids() == before, "a refused CreateUser must create nothing")
    finally:
        _delete_users_not_in(existing)
    return "valid users created (address only when sent), INVALID_ARGUMENT and ALREADY_EXISTS"


# --- 3. deadline, retry and backoff on the client ---------------------------------------

def get_user_with_retry(stub: user_service_pb2_grpc.UserServiceStub, user_id: int,
                        attempts: int = 4) -> user_service_pb2.User:
    """GetUser with a 0.5 s deadline per try, retrying UNAVAILABLE and DEADLINE_EXCEEDED
    with exponential backoff (0.05 s, 0.1 s, 0.2 s ...); any other error is raised at once."""
    retryable = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}
    for attempt in range(attempts):
        try:
            return stub.GetUser(user_service_pb2.GetUserRequest(id=user_id), timeout=0.5).user
        except grpc.RpcError as error:
            if error.code() not in retryable or attempt == attempts - 1:
                raise
            time.sleep(0.05 * 2**attempt)


@exercise(
    "grpc.retry",
    title="A deadline on every call; retry UNAVAILABLE and DEADLINE_EXCEEDED with backoff",
    notebook=NOTEBOOK,
    hints=[
        "Pass timeout=0.5 to stub.GetUser: that is the call's deadline.",
        "Catch grpc.RpcError and look at error.code(): only UNAVAILABLE and "
        "DEADLINE_EXCEEDED are worth another try; NOT_FOUND will be NOT_FOUND again.",
        "Sleep 0.05 * 2**attempt between tries, and re-raise the last error when the "
        "attempts run out.",
    ],
    reference=get_user_with_retry,
)
def check_retry(get_user_with_retry):
    outcome, calls, _ = _run_plan(get_user_with_retry, ["unavailable"] * 3 + ["ok"])
    if outcome is None and len(calls) <= 1:
        raise NotAttempted("get_user_with_retry returns None")
    expect(calls, "get_user_with_retry never called GetUser")
    remaining = [deadline for _, deadline in calls]
    expect(all(d is not None and d < 3600 for d in remaining),  # no deadline: "forever"
           "a call arrived with no deadline: pass timeout= to every call")
    expect(all(d <= 2 for d in remaining),
           f"the deadline should be short (0.5 s); calls arrived with {max(remaining):.1f} s left")
    expect(len(calls) == 4, f"the server answered UNAVAILABLE three times, then OK: expected 4 "
                            f"calls, got {len(calls)}")
    expect(getattr(outcome, "name", None) == _name_of(101),
           f"after three UNAVAILABLE the fourth call succeeds: return its user; you "
           f"{_describe(outcome)}")
    gaps = [later - earlier for (earlier, _), (later, _) in zip(calls, calls[1:], strict=False)]
    shown = ", ".join(f"{gap:.3f} s" for gap in gaps)
    expect(gaps[0] >= 0.04 and gaps[1] >= 0.09 and gaps[2] >= 0.18,
           f"wait before retrying, longer each time (0.05 s, 0.1 s, then 0.2 s); the gaps were "
           f"{shown}")
    expect(gaps[2] >= 2 * gaps[0],
           f"the waits should double (0.05 s, 0.1 s, 0.2 s), but the gaps were {shown}: a "
           "fixed pause keeps every failed client knocking at the same pace; sleep "
           "0.05 * 2**attempt")
    outcome, calls, elapsed = _run_plan(get_user_with_retry, ["slow", "ok"])
    expect(getattr(outcome, "name", None) == _name_of(101) and len(calls) == 2,
           f"the first call took 1.2 s: its deadline should expire and a retry succeed; "
           f"you {_describe(outcome)} after {len(calls)} call(s)")
    expect(elapsed < 1.1, f"the slow call should be given up after 0.5 s; it took {elapsed:.1f} s")
    outcome, calls, _ = _run_plan(get_user_with_retry, [], user_id=MISSING_ID)
    expect(isinstance(outcome, grpc.RpcError) and outcome.code() == grpc.StatusCode.NOT_FOUND,
           f"user {MISSING_ID} does not exist: raise the NOT_FOUND error; you "
           f"{_describe(outcome)}")
    expect(len(calls) == 1, f"NOT_FOUND will not change on a retry: expected 1 call, "
                            f"got {len(calls)}")
    final = cases().choice(["PERMISSION_DENIED", "INVALID_ARGUMENT", "UNAUTHENTICATED",
                            "FAILED_PRECONDITION", "INTERNAL"])
    outcome, calls, _ = _run_plan(get_user_with_retry, [final, "ok"])
    expect(isinstance(outcome, grpc.RpcError) and outcome.code() == grpc.StatusCode[final],
           f"the server answered {final}: raise it at once; you {_describe(outcome)} after "
           f"{len(calls)} call(s). Only UNAVAILABLE and DEADLINE_EXCEEDED may pass on a retry")
    expect(len(calls) == 1, f"{final} is not worth another try: expected 1 call, got "
                            f"{len(calls)}; retry only UNAVAILABLE and DEADLINE_EXCEEDED")
    outcome, calls, _ = _run_plan(get_user_with_retry, ["unavailable"] * 6)
    expect(isinstance(outcome, grpc.RpcError) and outcome.code() == grpc.StatusCode.UNAVAILABLE,
           f"when every try is UNAVAILABLE, raise the last error; you {_describe(outcome)}")
    expect(len(calls) == 4, f"attempts=4 means 4 calls at most, got {len(calls)}")
    for attempts in (cases().choice([2, 3]), 5):
        outcome, calls, _ = _run_plan(
            lambda stub, user_id, n=attempts: get_user_with_retry(stub, user_id, attempts=n),
            ["unavailable"] * 8)
        expect(len(calls) == attempts and isinstance(outcome, grpc.RpcError),
               f"with attempts={attempts} and every try UNAVAILABLE, expected {attempts} calls "
               f"and the last error raised; got {len(calls)} call(s) and you "
               f"{_describe(outcome)}: use the attempts you are given")
    gaps = [later - earlier for (earlier, _), (later, _) in zip(calls, calls[1:], strict=False)]
    expect(gaps[-1] >= 0.3,
           f"with attempts=5 the waits should keep doubling, 0.05 s to 0.4 s; the gaps were "
           f"{', '.join(f'{gap:.3f} s' for gap in gaps)}: sleep 0.05 * 2**attempt")
    return ("deadline on every call, backoff between tries, NOT_FOUND not retried, attempts "
            "honoured")


# --- 4. server streaming that reads as it sends -------------------------------------------

def stream_users(request: user_service_pb2.StreamUsersRequest,
                 context: grpc.ServicerContext) -> Iterator[user_service_pb2.UserResponse]:
    """StreamUsers that reads users 50 at a time, in id order, sending each as it is read,
    so a client that hangs up early stops the reading too."""
    query = select(User).order_by(User.id).limit(50)
    if request.filter:
        query = query.where(User.name.contains(request.filter, autoescape=True))
    after = 0
    while context.is_active():
        batch = list(db.session.scalars(query.where(User.id > after)))
        for user in batch:
            yield user_service_pb2.UserResponse(user=user_to_proto(user), success=True)
        if len(batch) < 50:
            return
        after = batch[-1].id


STREAM_EXTRA_USERS = 600


@exercise(
    "grpc.stream",
    title="Server streaming that reads as it sends, and stops when the client hangs up",
    notebook=NOTEBOOK,
    hints=[
        "A servicer's streaming method is a generator: each `yield` sends one message.",
        "Read a batch at a time: select(User).order_by(User.id).where(User.id > last_id)"
        ".limit(50), then the next batch after the last id you sent.",
        "`query.all()` reads every row before the first is sent. Between batches, stop if "
        "context.is_active() is false.",
    ],
    reference=stream_users,
    timeout=20,
)
def check_stream(stream_users):
    if stream_users(user_service_pb2.StreamUsersRequest(), None) is None:
        raise NotAttempted("stream_users returns None")

    class Servicer(grpc_service.UserServicer):
        def StreamUsers(self, request, context):
            return stream_users(request, context)

    existing = _user_ids()
    db.session.add_all(User(name=f"Streamer {i}", email=f"streamer{i}@check.example")
                       for i in range(STREAM_EXTRA_USERS))
    db.session.commit()
    loaded: list[int] = []

    def count_load(user, _context) -> None:
        if threading.current_thread().name.startswith(CHECK_SERVER):
            loaded.append(user.id)

    try:
        with _check_server(servicer=Servicer()) as server, \
                grpc_service.channel(server.url) as channel:
            stub = user_service_pb2_grpc.UserServiceStub(channel)
            for filter in ("", "Streamer 1"):
                expected = list(db.session.scalars(select(User.id).where(
                    User.name.contains(filter)).order_by(User.id)))
                db.session.remove()
                request = user_service_pb2.StreamUsersRequest(filter=filter)
                got = [r.user.id for r in stub.StreamUsers(request, timeout=5)]
                what = f"with filter {filter!r}" if filter else "with no filter"
                expect(len(got) == len(expected),
                       f"StreamUsers {what} should send {len(expected)} users, sent {len(got)}")
                expect(got == expected, f"StreamUsers {what} should send the users in id "
                                        f"order: {expected[:5]}..., got {got[:5]}...")
            event.listen(User, "load", count_load)
            stream = stub.StreamUsers(user_service_pb2.StreamUsersRequest(), timeout=5)
            for _ in range(3):
                next(stream)
            stream.cancel()
            time.sleep(0.3)
            total = len(existing) + STREAM_EXTRA_USERS
            expect(len(loaded) < total / 2,
                   f"a client read 3 users and hung up, but your StreamUsers loaded "
                   f"{len(loaded)} of the {total} rows: read a batch at a time, not .all()")
    finally:
        if event.contains(User, "load", count_load):
            event.remove(User, "load", count_load)
        _delete_users_not_in(existing)
    return (f"every user in id order, filters honoured, and {len(loaded)} rows read for a "
            "client that took 3 and hung up")


# --- 5. an auth interceptor ------------------------------------------------------------

class BearerAuth(grpc.ServerInterceptor):
    """Refuse calls without ``authorization: Bearer <token>``; health checks stay open."""

    def __init__(self, token: str) -> None:
        self.expected = f"Bearer {token}"

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        if handler_call_details.method.startswith("/grpc.health.v1.Health/"):
            return continuation(handler_call_details)
        metadata = dict(handler_call_details.invocation_metadata)
        if metadata.get("authorization") == self.expected:
            return continuation(handler_call_details)

        def deny(request: bytes, context: grpc.ServicerContext) -> None:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or invalid bearer token")

        return grpc.unary_unary_rpc_method_handler(deny)


@exercise(
    "grpc.auth-interceptor",
    title="A server interceptor that answers UNAUTHENTICATED without a bearer token",
    notebook=NOTEBOOK,
    hints=[
        "handler_call_details.invocation_metadata holds the client's metadata as (key, value) "
        "pairs; handler_call_details.method is e.g. '/user.UserService/GetUser'.",
        "To let a call through, return continuation(handler_call_details).",
        "To refuse it, return grpc.unary_unary_rpc_method_handler(deny), where deny(request, "
        "context) calls context.abort(grpc.StatusCode.UNAUTHENTICATED, ...).",
    ],
    reference=BearerAuth,
)
def check_auth_interceptor(BearerAuth):
    draw = cases()
    token = "".join(draw.choice("abcdefghjkmnpqrstuvwxyz23456789") for _ in range(12))
    interceptor = BearerAuth(token)
    with _check_server(interceptors=[interceptor]) as server, \
            grpc_service.channel(server.url) as channel:
        stub = user_service_pb2_grpc.UserServiceStub(channel)
        request = user_service_pb2.GetUserRequest(id=101)
        good = [("authorization", f"Bearer {token}")]
        code = _code(stub.GetUser, request, timeout=5, metadata=good)
        if code == grpc.StatusCode.UNIMPLEMENTED:
            raise NotAttempted("intercept_service returns None, so no call finds its method")
        expect(code == grpc.StatusCode.OK,
               f"BearerAuth({token!r}): GetUser with 'authorization: Bearer {token}' answered "
               f"{code.name}, expected OK (the token is the one passed to __init__)")
        for metadata, what in [(None, "no metadata"),
                               ([("authorization", "Bearer wrong")], "a wrong token"),
                               ([("authorization", token)], "the token without 'Bearer '"),
                               ([("authorization", f"Bearer {token}{draw.choice('xyz')}")],
                                "the token with a character added (compare the whole value)"),
                               ([("authorization", f"Bearer {token[:-1]}")],
                                "the token less its last character (compare the whole value)"),
                               ([("authorization", f"Basic {token}")],
                                "the token under the Basic scheme")]:
            code = _code(stub.GetUser, request, timeout=5, metadata=metadata)
            expect(code == grpc.StatusCode.UNAUTHENTICATED,
                   f"GetUser with {what} answered {code.name}, expected UNAUTHENTICATED")
        code = _code(lambda: list(stub.StreamUsers(user_service_pb2.StreamUsersRequest(),
                                                   timeout=5)))
        expect(code == grpc.StatusCode.UNAUTHENTICATED,
               f"StreamUsers without a token answered {code.name}, expected UNAUTHENTICATED: "
               "every method needs the check")
        for method in ("/user.UserService/HealthReport", "/grpc.health.v1.HealthAdmin/Reset"):
            call = channel.unary_unary(method, request_serializer=lambda raw: raw,
                                       response_deserializer=lambda raw: raw)
            code = _code(call, b"", timeout=5)
            expect(code == grpc.StatusCode.UNAUTHENTICATED,
                   f"{method} without a token answered {code.name}, expected UNAUTHENTICATED: "
                   "only the health service, /grpc.health.v1.Health/, is open; compare the "
                   "service part of the method whole, not by a substring or prefix of it")
        health = health_pb2_grpc.HealthStub(channel)
        code = _code(health.Check, health_pb2.HealthCheckRequest(), timeout=5)
        expect(code == grpc.StatusCode.OK,
               f"a health check without a token answered {code.name}: load balancers probe "
               "/grpc.health.v1.Health/Check without credentials, let it through")
    return "bearer token required on UserService, health checks open"


# --- 6. a bidirectional exchange ----------------------------------------------------------

@exercise(
    "grpc.bidi-lookup",
    title="Bidirectional streaming: answer each id as it arrives, unknown ids in-stream",
    notebook=NOTEBOOK,
    hints=[
        "Loop `for request in request_iterator:` and yield one UserResponse per request, "
        "inside the loop: the client may wait for each answer before sending the next id.",
        "db.session.get(User, request.id) finds a user or gives None.",
        "context.abort(NOT_FOUND) would end the whole stream; answer an unknown id with "
        "UserResponse(success=False, error_message=...) and go on.",
    ],
    reference=grpc_service.lookup_users,
)
def check_bidi_lookup(lookup_users):
    draw = cases()
    known = draw.sample(range(101, 126), 3)
    ids = [known[0], MISSING_ID + draw.randrange(1000), known[1], known[2], known[0]]
    if lookup_users(iter(()), None) is None:
        raise NotAttempted("lookup_users returns None")
    with _check_server(lookup=lookup_users) as server, \
            grpc_service.channel(server.url) as channel:
        stub = user_lookup_pb2_grpc.UserLookupStub(channel)
        original = _name_of(known[0])
        outbox: queue.Queue = queue.Queue()
        call = stub.LookupUsers(iter(outbox.get, None), timeout=5)
        answers: queue.Queue = queue.Queue()

        def read() -> None:
            try:
                for response in call:
                    answers.put(response)
                answers.put("end")
            except grpc.RpcError as error:
                answers.put(error)

        threading.Thread(target=read, daemon=True).start()
        try:
            for n, id in enumerate(ids):
                if n == len(ids) - 1:  # asked again, renamed since: read it again
                    _rename(id, f"{original} (renamed)")
                name = _name_of(id)
                outbox.put(user_service_pb2.GetUserRequest(id=id))
                try:
                    answer = answers.get(timeout=1)
                except queue.Empty:
                    raise Unmet(f"sent id {id} and waited 1 s with no answer: answer each "
                                "request as it arrives, don't read the whole stream "
                                "first") from None
                if answer == "end" and id == ids[0]:
                    raise NotAttempted("lookup_users yields nothing")
                if isinstance(answer, grpc.RpcError):
                    raise Unmet(f"after id {id} the stream ended with {answer.code().name} "
                                f"({answer.details()}): one lookup must not end the others; "
                                "answer it in-stream") from None
                expect(answer != "end", f"the stream ended after id {id} without an answer")
                if name is None:
                    expect(not answer.success and answer.error_message,
                           f"user {id} does not exist: answer success=False with an "
                           f"error_message, got {answer!r}")
                else:
                    expect(answer.success and answer.user.name == name,
                           f"id {id} should be answered with {name} and success=True, "
                           f"got {answer!r}" + (
                               f": user {id} was renamed after your first answer; look each "
                               "id up when it arrives (a cache kept across requests is stale)"
                               if n == len(ids) - 1 else ""))
        finally:
            outbox.put(None)
            _rename(known[0], original)
        end = answers.get(timeout=2)
        expect(end == "end", f"after the client closed its side the stream should end with OK, "
                             f"got {end!r}")
    return "each id answered before the next was sent, an unknown id answered in-stream"
