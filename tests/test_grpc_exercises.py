"""Every exercise of 03-grpc: the reference passes, plausible wrong answers fail, saying why."""

from __future__ import annotations

import time

import grpc
import pytest
from exercise_helpers import assert_fails, assert_passes
from sqlalchemy import select

from labsupport import database
from labsupport.database import Address, User, db
from labsupport.engine import get
from labsupport.labs.grpc_service.exercises import BearerAuth
from labsupport.labs.grpc_service.server import (
    user_service_pb2,
    user_service_pb2_grpc,
    user_to_proto,
)


@pytest.fixture(autouse=True, scope="module")
def sample_data():
    database.reset()


# --- grpc.first-call -----------------------------------------------------------------

def _get_user(channel, user_id, **options):
    stub = user_service_pb2_grpc.UserServiceStub(channel)
    return stub.GetUser(user_service_pb2.GetUserRequest(id=user_id), **options)


def test_first_call_reference_passes():
    assert_passes("grpc.first-call")


def test_first_call_stub_is_not_attempted():
    assert_fails("grpc.first-call", lambda channel, user_id: None, "not solved yet")


def test_first_call_without_deadline_fails():
    def no_deadline(channel, user_id):
        try:
            return _get_user(channel, user_id).user.name
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise

    assert_fails("grpc.first-call", no_deadline, "GetUser arrived with no deadline")


def test_first_call_with_the_documents_ten_second_deadline_fails():
    def documents_deadline(channel, user_id):
        try:
            return _get_user(channel, user_id, timeout=10).user.name
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise

    assert_fails("grpc.first-call", documents_deadline,
                 "the deadline should be 1 s; the call arrived with 10")


def test_first_call_letting_not_found_raise_fails():
    def raises_everything(channel, user_id):
        return _get_user(channel, user_id, timeout=1).user.name

    assert_fails("grpc.first-call", raises_everything,
                 "does not exist, so the server answers NOT_FOUND: return None; you raised "
                 "NOT_FOUND")


def test_first_call_every_error_as_none_fails():
    def documents_way(channel, user_id):
        try:
            response = _get_user(channel, user_id, timeout=1)
            return response.user.name if response.success else None
        except grpc.RpcError:
            return None

    assert_fails("grpc.first-call", documents_way,
                 "the server answered UNAVAILABLE, which says nothing about user 101")


def test_first_call_deadline_as_none_fails():
    def missing_when_slow(channel, user_id):
        try:
            return _get_user(channel, user_id, timeout=1).user.name
        except grpc.RpcError as error:
            if error.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.DEADLINE_EXCEEDED):
                return None
            raise

    assert_fails("grpc.first-call", missing_when_slow,
                 "a 1 s deadline ends the call with DEADLINE_EXCEEDED, to be raised")


def test_first_call_returning_the_message_fails():
    def whole_message(channel, user_id):
        try:
            return _get_user(channel, user_id, timeout=1).user
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise

    assert_fails("grpc.first-call", whole_message, "return the name (response.user.name)")


# --- grpc.status-codes --------------------------------------------------------------

def test_status_codes_reference_passes():
    assert_passes("grpc.status-codes")


def test_status_codes_stub_is_not_attempted():
    assert_fails("grpc.status-codes", lambda request, context: None, "not solved yet")


def test_status_codes_truthy_address_fails():
    def truthy_address(request, context):
        if not request.name or "@" not in request.email:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "name and email are required")
        if db.session.scalar(select(User).where(User.email == request.email)):
            context.abort(grpc.StatusCode.ALREADY_EXISTS, "email taken")
        user = User(name=request.name, email=request.email)
        if request.address:
            user.address = Address(city=request.address.city, country=request.address.country)
        db.session.add(user)
        db.session.commit()
        return user_service_pb2.UserResponse(user=user_to_proto(user), success=True)

    assert_fails("grpc.status-codes", truthy_address, "`if request.address:` is always true")


def test_status_codes_internal_on_duplicate_fails():
    def documents_way(request, context):
        if not request.name or not request.email or "@" not in request.email:
            context.set_code(grpc.StatusCode.INVALID_ARGUMENT)
            context.set_details("Name and email are required")
            return user_service_pb2.UserResponse()
        try:
            user = User(name=request.name, email=request.email)
            if request.HasField("address"):
                user.address = Address(city=request.address.city)
            db.session.add(user)
            db.session.commit()
            return user_service_pb2.UserResponse(user=user_to_proto(user), success=True)
        except Exception as e:
            db.session.rollback()
            context.set_code(grpc.StatusCode.INTERNAL)
            context.set_details(str(e))
            return user_service_pb2.UserResponse(success=False, error_message=str(e))

    assert_fails("grpc.status-codes", documents_way,
                 "an email already taken, answered INTERNAL, expected ALREADY_EXISTS")


def test_status_codes_error_in_the_body_fails():
    reference = get("grpc.status-codes").reference

    def error_in_body(request, context):
        if not request.name and not request.email:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "empty")
        return reference(request, context) if "@" in request.email else \
            user_service_pb2.UserResponse(success=False, error_message="bad email")

    assert_fails("grpc.status-codes", error_in_body,
                 "CreateUser with an empty email answered OK, expected INVALID_ARGUMENT")


def test_status_codes_leave_no_users_behind():
    before = set(db.session.scalars(select(User.id)))
    db.session.remove()
    assert_passes("grpc.status-codes")
    assert set(db.session.scalars(select(User.id))) == before
    db.session.remove()


# --- grpc.retry ----------------------------------------------------------------------

def test_retry_reference_passes():
    assert_passes("grpc.retry")


def test_retry_without_deadline_fails():
    def no_deadline(stub, user_id, attempts=4):
        for attempt in range(attempts):
            try:
                return stub.GetUser(user_service_pb2.GetUserRequest(id=user_id)).user
            except grpc.RpcError as error:
                if error.code() != grpc.StatusCode.UNAVAILABLE or attempt == attempts - 1:
                    raise
                time.sleep(0.05 * 2**attempt)

    assert_fails("grpc.retry", no_deadline, "a call arrived with no deadline")


def test_retry_without_backoff_fails():
    def hammering(stub, user_id, attempts=4):
        for attempt in range(attempts):
            try:
                return stub.GetUser(user_service_pb2.GetUserRequest(id=user_id), timeout=0.5).user
            except grpc.RpcError as error:
                if error.code() == grpc.StatusCode.NOT_FOUND or attempt == attempts - 1:
                    raise

    assert_fails("grpc.retry", hammering, "wait before retrying")


def test_retry_of_everything_fails():
    def retries_all(stub, user_id, attempts=4):
        for attempt in range(attempts):
            try:
                return stub.GetUser(user_service_pb2.GetUserRequest(id=user_id), timeout=0.5).user
            except grpc.RpcError:
                if attempt == attempts - 1:
                    raise
                time.sleep(0.05 * 2**attempt)

    assert_fails("grpc.retry", retries_all, "NOT_FOUND will not change on a retry")


def test_retry_swallowing_errors_fails():
    reference = get("grpc.retry").reference

    def returns_none(stub, user_id, attempts=4):
        try:
            return reference(stub, user_id, attempts)
        except grpc.RpcError:
            return None

    assert_fails("grpc.retry", returns_none,
                 "does not exist: raise the NOT_FOUND error; you returned NoneType")


# --- grpc.stream ----------------------------------------------------------------------

def test_stream_reference_passes():
    assert_passes("grpc.stream")


def test_stream_stub_is_not_attempted():
    assert_fails("grpc.stream", lambda request, context: None, "not solved yet")


def test_stream_reading_everything_first_fails():
    def documents_way(request, context):
        query = User.query
        if request.filter:
            query = query.filter(User.name.contains(request.filter))
        for user in query.order_by(User.id).all():
            yield user_service_pb2.UserResponse(user=user_to_proto(user), success=True)

    assert_fails("grpc.stream", documents_way, "read a batch at a time, not .all()")


def test_stream_ignoring_the_filter_fails():
    reference = get("grpc.stream").reference

    def unfiltered(request, context):
        yield from reference(user_service_pb2.StreamUsersRequest(), context)

    assert_fails("grpc.stream", unfiltered, "with filter 'Streamer 1' should send 111 users")


def test_stream_repeating_the_last_row_fails():
    def inclusive(request, context):
        after = 0
        while True:
            batch = list(db.session.scalars(select(User).where(User.id >= after)
                                            .order_by(User.id).limit(50)))
            for user in batch:
                yield user_service_pb2.UserResponse(user=user_to_proto(user), success=True)
            if len(batch) < 50:
                return
            after = batch[-1].id

    assert_fails("grpc.stream", inclusive, "with no filter should send 625 users, sent 637")


def test_stream_leaves_no_users_behind():
    before = set(db.session.scalars(select(User.id)))
    db.session.remove()
    assert_passes("grpc.stream")
    assert set(db.session.scalars(select(User.id))) == before
    db.session.remove()


# --- grpc.auth-interceptor ----------------------------------------------------------

def test_auth_reference_passes():
    assert_passes("grpc.auth-interceptor")


def test_auth_stub_is_not_attempted():
    class Stub(grpc.ServerInterceptor):
        def __init__(self, token):
            pass

        def intercept_service(self, continuation, handler_call_details):
            ...

    assert_fails("grpc.auth-interceptor", Stub, "not solved yet")


def test_auth_checking_presence_only_fails():
    class PresenceOnly(grpc.ServerInterceptor):
        def __init__(self, token):
            pass

        def intercept_service(self, continuation, handler_call_details):
            if "authorization" in dict(handler_call_details.invocation_metadata):
                return continuation(handler_call_details)
            return grpc.unary_unary_rpc_method_handler(
                lambda request, context: context.abort(grpc.StatusCode.UNAUTHENTICATED, "no"))

    assert_fails("grpc.auth-interceptor", PresenceOnly,
                 "with a wrong token answered OK, expected UNAUTHENTICATED")


def test_auth_raising_in_the_interceptor_fails():
    class Raises(grpc.ServerInterceptor):
        def __init__(self, token):
            self.token = token

        def intercept_service(self, continuation, handler_call_details):
            metadata = dict(handler_call_details.invocation_metadata)
            if metadata.get("authorization") != f"Bearer {self.token}":
                raise PermissionError("unauthenticated")
            return continuation(handler_call_details)

    assert_fails("grpc.auth-interceptor", Raises, "with no metadata answered UNKNOWN")


def test_auth_guarding_health_checks_fails():
    class GuardsEverything(grpc.ServerInterceptor):
        def __init__(self, token):
            self.expected = f"Bearer {token}"

        def intercept_service(self, continuation, handler_call_details):
            if dict(handler_call_details.invocation_metadata).get("authorization") == \
                    self.expected:
                return continuation(handler_call_details)
            return grpc.unary_unary_rpc_method_handler(
                lambda request, context: context.abort(grpc.StatusCode.UNAUTHENTICATED, "no"))

    assert_fails("grpc.auth-interceptor", GuardsEverything, "a health check without a token")


# --- grpc.bidi-lookup ----------------------------------------------------------------

def test_bidi_reference_passes():
    assert_passes("grpc.bidi-lookup")


def test_bidi_stub_is_not_attempted():
    assert_fails("grpc.bidi-lookup", lambda request_iterator, context: None, "not solved yet")


def test_bidi_reading_everything_first_fails():
    def batch(request_iterator, context):
        ids = [request.id for request in request_iterator]
        for id in ids:
            user = db.session.get(User, id)
            yield user_service_pb2.UserResponse(user=user_to_proto(user), success=True)

    assert_fails("grpc.bidi-lookup", batch, "waited 1 s with no answer")


def test_bidi_aborting_on_unknown_id_fails():
    def aborts(request_iterator, context):
        for request in request_iterator:
            user = db.session.get(User, request.id)
            if user is None:
                context.abort(grpc.StatusCode.NOT_FOUND, f"user {request.id} not found")
            yield user_service_pb2.UserResponse(user=user_to_proto(user), success=True)

    assert_fails("grpc.bidi-lookup", aborts, "the stream ended with NOT_FOUND")


def test_bidi_empty_answer_for_unknown_id_fails():
    def empty(request_iterator, context):
        for request in request_iterator:
            user = db.session.get(User, request.id)
            yield user_service_pb2.UserResponse(
                user=user_to_proto(user) if user else None, success=True)

    assert_fails("grpc.bidi-lookup", empty, "does not exist: answer success=False")


def test_solution_sources_need_only_the_notebook_imports():
    """What solution() shows runs with the names the notebook imports."""
    from labsupport import grpc_service as lab

    namespace = {"grpc": grpc, "time": time, "select": select, "db": db, "User": User,
                 "Address": Address, "user_service_pb2": user_service_pb2,
                 "user_service_pb2_grpc": user_service_pb2_grpc,
                 "user_to_proto": lab.user_to_proto}
    for id in ("grpc.first-call", "grpc.status-codes", "grpc.retry", "grpc.stream",
               "grpc.auth-interceptor", "grpc.bidi-lookup"):
        exec(compile(get(id).solution_source, id, "exec"), dict(namespace))


# --- wrong answers by class ----------------------------------------------------------


def test_first_call_fitted_to_the_two_codes_the_notebook_shows_fails():
    """Too loose: raising UNAVAILABLE and DEADLINE_EXCEEDED only, every other code as None."""
    def two_codes(channel, user_id):
        try:
            return _get_user(channel, user_id, timeout=1).user.name
        except grpc.RpcError as error:
            if error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise
            return None

    assert_fails("grpc.first-call", two_codes, "None is for NOT_FOUND only, every other code")


def test_retry_with_a_fixed_pause_fails():
    """Happy path only: a fixed pause, where the lesson is a wait that doubles."""
    def fixed_pause(stub, user_id, attempts=4):
        for attempt in range(attempts):
            try:
                return stub.GetUser(user_service_pb2.GetUserRequest(id=user_id),
                                    timeout=0.5).user
            except grpc.RpcError as error:
                if error.code() not in (grpc.StatusCode.UNAVAILABLE,
                                        grpc.StatusCode.DEADLINE_EXCEEDED) \
                        or attempt == attempts - 1:
                    raise
                time.sleep(0.2)

    assert_fails("grpc.retry", fixed_pause, "the waits should double")


def test_retry_of_everything_but_not_found_fails():
    """Too loose: NOT_FOUND (the notebook's example) not retried, every other code retried."""
    def all_but_not_found(stub, user_id, attempts=4):
        for attempt in range(attempts):
            try:
                return stub.GetUser(user_service_pb2.GetUserRequest(id=user_id),
                                    timeout=0.5).user
            except grpc.RpcError as error:
                if error.code() == grpc.StatusCode.NOT_FOUND or attempt == attempts - 1:
                    raise
                time.sleep(0.05 * 2**attempt)

    assert_fails("grpc.retry", all_but_not_found, "Only UNAVAILABLE and DEADLINE_EXCEEDED may pass")


def test_auth_with_the_notebooks_token_fails():
    """A constant: the token of the notebook's example, not the one given to __init__."""
    assert get("grpc.auth-interceptor").reference is BearerAuth

    class Hardcoded(BearerAuth):
        def __init__(self, token):
            super().__init__("s3cret")

    assert_fails("grpc.auth-interceptor", Hardcoded, "the token is the one passed to __init__")


def test_auth_by_prefix_fails():
    """Too loose: startswith lets a longer token in."""
    class Prefix(grpc.ServerInterceptor):
        def __init__(self, token):
            self.expected = f"Bearer {token}"

        def intercept_service(self, continuation, handler_call_details):
            value = dict(handler_call_details.invocation_metadata).get("authorization", "")
            if handler_call_details.method.startswith("/grpc.health.v1.Health/") \
                    or value.startswith(self.expected):
                return continuation(handler_call_details)
            return grpc.unary_unary_rpc_method_handler(
                lambda request, context: context.abort(grpc.StatusCode.UNAUTHENTICATED, "no"))

    assert_fails("grpc.auth-interceptor", Prefix, "compare the whole value")


def test_status_codes_and_stream_pass_in_a_fresh_interpreter():
    """No lab started, no session bound: the checks set their data up themselves."""
    import subprocess
    import sys
    code = ("from labsupport import check; from labsupport.engine import get\n"
            "for id in ('grpc.status-codes', 'grpc.stream'):\n"
            "    v = check(id, get(id).reference); print(v); assert v.passed\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr[-1000:]


def test_status_codes_name_checked_without_strip_fails():
    """Too loose: `if not request.name` lets a name of only whitespace in."""
    def no_strip(request, context):
        if not request.name or "@" not in request.email:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "name and a valid email are required")
        if db.session.scalar(select(User).where(User.email == request.email)) is not None:
            context.abort(grpc.StatusCode.ALREADY_EXISTS, "taken")
        user = User(name=request.name, email=request.email, tags=list(request.tags))
        if request.HasField("address"):
            user.address = Address(city=request.address.city, country=request.address.country)
        db.session.add(user)
        db.session.commit()
        return user_service_pb2.UserResponse(user=user_to_proto(user), success=True)

    assert_fails("grpc.status-codes", no_strip, "a name of only whitespace")


def _retry(user_id, stub, attempts, waits):
    retryable = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}
    for attempt in range(attempts):
        try:
            return stub.GetUser(user_service_pb2.GetUserRequest(id=user_id), timeout=0.5).user
        except grpc.RpcError as error:
            if error.code() not in retryable or attempt == attempts - 1:
                raise
            time.sleep(waits[attempt])


def test_retry_ignoring_the_attempts_given_fails():
    """Fitted to the default: four tries whatever `attempts` says."""
    def four_tries(stub, user_id, attempts=4):
        return _retry(user_id, stub, 4, [0.05, 0.1, 0.2])

    assert_fails("grpc.retry", four_tries, "use the attempts you are given")


def test_retry_with_the_shown_waits_only_fails():
    """A lookup table of the three waits the default shows, then the last one again."""
    def table(stub, user_id, attempts=4):
        return _retry(user_id, stub, attempts, [0.05, 0.1, 0.2, 0.2, 0.2, 0.2, 0.2])

    assert_fails("grpc.retry", table, "the waits should keep doubling")


def test_auth_health_by_substring_fails():
    """Too loose: any method whose name contains 'Health' goes through without a token."""
    class Substring(BearerAuth):
        def intercept_service(self, continuation, handler_call_details):
            if "Health" in handler_call_details.method:
                return continuation(handler_call_details)
            return super().intercept_service(continuation, handler_call_details)

    assert_fails("grpc.auth-interceptor", Substring, "compare the service part of the method")


def test_bidi_answers_from_a_cache_kept_across_requests_fails():
    """One-process state: each user looked up once and kept in a module-level dict, so a
    user renamed since is answered with the old name."""
    kept: dict[int, user_service_pb2.User | None] = {}

    def cached(request_iterator, context):
        for request in request_iterator:
            if request.id not in kept:
                user = db.session.get(User, request.id)
                kept[request.id] = user_to_proto(user) if user is not None else None
            found = kept[request.id]
            if found is None:
                yield user_service_pb2.UserResponse(success=False, error_message="not found")
            else:
                yield user_service_pb2.UserResponse(user=found, success=True)

    assert_fails("grpc.bidi-lookup", cached, "was renamed after your first answer")
