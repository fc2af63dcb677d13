"""The gRPC lab's server: every RPC, its status codes, streaming, auth, health, reflection."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import threading
import time

import grpc
import pytest
from google.protobuf import descriptor_pool, message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from sqlalchemy.pool import QueuePool

from labsupport import codegen, database, grpc_service, harness
from labsupport.database import User, db
from labsupport.labs.grpc_service.server import field_violations, user_lookup_pb2_grpc
from labsupport.labs.grpc_service.server import user_service_pb2 as pb
from labsupport.labs.grpc_service.server import user_service_pb2_grpc as pb_grpc

TIMEOUT = 5


@pytest.fixture
def stub(grpc_channel):
    return pb_grpc.UserServiceStub(grpc_channel)


def user_count() -> int:
    count = db.session.query(User).count()
    db.session.remove()
    return count


def rpc_error(call, request, **kwargs) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call(request, timeout=TIMEOUT, **kwargs)
    return caught.value


# --- code generation -----------------------------------------------------------

def test_generated_code_is_cached_by_the_proto_contents(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    protos = tmp_path / "protos"
    protos.mkdir()
    proto = protos / "tiny.proto"
    proto.write_text('syntax = "proto3";\npackage tiny;\nmessage Ping { int32 n = 1; }\n')
    first = codegen.generate(protos)
    assert (first / "tiny_pb2.py").is_file()
    assert first.parent == tmp_path / "cache" / "protocol-lab" / "grpc"
    assert codegen.generate(protos) == first
    proto.write_text(proto.read_text().replace("int32 n = 1;", "int32 n = 1; string s = 2;"))
    second = codegen.generate(protos)
    assert second != first and "string s" not in (first / "tiny_pb2.py").read_text()


def test_an_unwritable_cache_falls_back_to_a_temporary_directory(tmp_path, monkeypatch):
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(not_a_directory))
    generated = codegen.generate()
    assert (generated / "user_service_pb2.py").is_file()
    assert not generated.is_relative_to(not_a_directory)
    assert codegen.generate() == generated, "the fallback is made once per process"


def test_a_broken_proto_raises(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "bad.proto").write_text('syntax = "proto3";\nmessage {')
    with pytest.raises(codegen.ProtocError):
        codegen.generate(tmp_path)


def test_the_documents_proto_is_unchanged():
    """protos/user_service.proto is the document's block byte for byte; additions go elsewhere."""
    digest = hashlib.sha256((codegen.PROTOS / "user_service.proto").read_bytes()).hexdigest()
    assert digest == "18d24d0f657b3ee37fb7286b28b6f173fa0ad652fe924bad110c5af539d9416e"


# --- unary RPCs -------------------------------------------------------------------

def test_get_user(stub):
    response = stub.GetUser(pb.GetUserRequest(id=101), timeout=TIMEOUT)
    assert response.success and response.user.name == "Ada Lovelace"
    assert response.user.HasField("address") and response.user.address.city == "London"
    assert response.user.created_at == 1704110400  # 2024-01-01T12:00:00Z, whatever the TZ


def test_get_user_status_codes(stub):
    assert rpc_error(stub.GetUser, pb.GetUserRequest(id=999)).code() == grpc.StatusCode.NOT_FOUND
    error = rpc_error(stub.GetUser, pb.GetUserRequest())
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "id" in field_violations(error)


def test_list_users_pages_with_opaque_tokens(stub):
    seen, token = [], ""
    while True:
        page = stub.ListUsers(pb.ListUsersRequest(page_size=7, page_token=token), timeout=TIMEOUT)
        seen += [user.id for user in page.users]
        assert page.total_count == user_count()
        token = page.next_page_token
        if not token:
            break
        assert not token.isdigit()
    assert seen == list(range(101, 101 + user_count()))


def test_list_users_filter_counts_matches(stub):
    page = stub.ListUsers(pb.ListUsersRequest(filter="Murray"), timeout=TIMEOUT)
    assert page.total_count == 0
    page = stub.ListUsers(pb.ListUsersRequest(filter="Lamport"), timeout=TIMEOUT)
    assert [u.name for u in page.users] == ["Leslie Lamport"] and page.total_count == 1
    page = stub.ListUsers(pb.ListUsersRequest(filter="%"), timeout=TIMEOUT)
    assert page.total_count == 0, "a % in the filter is a character, not a wildcard"


@pytest.mark.parametrize("request_, field", [
    (pb.ListUsersRequest(page_token="abc"), "page_token"),
    (pb.ListUsersRequest(page_token="10"), "page_token"),
    (pb.ListUsersRequest(page_size=-1), "page_size"),
    (pb.ListUsersRequest(filter="x" * 101), "filter"),
    (pb.ListUsersRequest(filter="\0"), "filter"),
])
def test_list_users_bad_input_is_invalid_argument(stub, request_, field):
    error = rpc_error(stub.ListUsers, request_)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in field_violations(error), error.details()


def test_list_users_page_size_is_capped(stub):
    page = stub.ListUsers(pb.ListUsersRequest(page_size=10_000), timeout=TIMEOUT)
    assert len(page.users) == user_count()  # 25 < the cap of 100


def test_create_update_delete(stub):
    created = stub.CreateUser(pb.CreateUserRequest(
        name="Eve", email="eve@example.com", tags=["new"],
        address=pb.Address(city="Oslo", country="NO"),
    ), timeout=TIMEOUT).user
    assert created.id and created.address.city == "Oslo" and list(created.tags) == ["new"]
    updated = stub.UpdateUser(pb.UpdateUserRequest(id=created.id, name="Eve Online"),
                              timeout=TIMEOUT).user
    assert (updated.name, updated.email, updated.address.city) == \
        ("Eve Online", "eve@example.com", "Oslo")
    assert stub.DeleteUser(pb.DeleteUserRequest(id=created.id), timeout=TIMEOUT).success
    error = rpc_error(stub.GetUser, pb.GetUserRequest(id=created.id))
    assert error.code() == grpc.StatusCode.NOT_FOUND


def test_create_without_address_has_no_address(stub):
    created = stub.CreateUser(pb.CreateUserRequest(name="Nadia", email="nadia@example.com"),
                              timeout=TIMEOUT).user
    try:
        assert not created.HasField("address")
    finally:
        stub.DeleteUser(pb.DeleteUserRequest(id=created.id), timeout=TIMEOUT)


@pytest.mark.parametrize("request_, fields", [
    (pb.CreateUserRequest(), {"name", "email"}),
    (pb.CreateUserRequest(name="Eve", email="nope"), {"email"}),
    (pb.CreateUserRequest(name="x" * 101, email="eve@example.com"), {"name"}),
    (pb.CreateUserRequest(name="Eve", email="eve@example.com", tags=[" "]), {"tags[0]"}),
    (pb.CreateUserRequest(name="Eve", email="eve@example.com", tags=["t"] * 21), {"tags"}),
    (pb.CreateUserRequest(name="Eve", email="eve@example.com",
                          address=pb.Address(postal_code="9" * 21)), {"address.postal_code"}),
])
def test_create_user_field_violations(stub, request_, fields):
    before = user_count()
    error = rpc_error(stub.CreateUser, request_)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(error)) == fields
    assert user_count() == before


def test_duplicate_email_is_already_exists(stub):
    before = user_count()
    error = rpc_error(stub.CreateUser, pb.CreateUserRequest(
        name="Ada again", email="ada.lovelace@example.com"))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    error = rpc_error(stub.UpdateUser, pb.UpdateUserRequest(
        id=102, email="ada.lovelace@example.com"))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    error = rpc_error(stub.CreateUser, pb.CreateUserRequest(
        name="Ada shouting", email="ADA.LOVELACE@EXAMPLE.COM"))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS, "letter case made a second Ada"
    assert user_count() == before
    assert stub.GetUser(pb.GetUserRequest(id=102), timeout=TIMEOUT).user.email == \
        "alan.turing@example.com"


def test_update_and_delete_unknown_ids(stub):
    for call, request_ in [(stub.UpdateUser, pb.UpdateUserRequest(id=999, name="X")),
                           (stub.DeleteUser, pb.DeleteUserRequest(id=999))]:
        assert rpc_error(call, request_).code() == grpc.StatusCode.NOT_FOUND


def test_metadata_both_ways(stub):
    _, call = stub.GetUser.with_call(pb.GetUserRequest(id=101), timeout=TIMEOUT,
                                     metadata=[("x-request-id", "lab-42")])
    assert ("x-request-id", "lab-42") in [(m.key, m.value) for m in call.initial_metadata()]
    _, call = stub.GetUser.with_call(pb.GetUserRequest(id=101), timeout=TIMEOUT)
    assert len(dict(call.initial_metadata())["x-request-id"]) == 12


def test_sessions_are_returned_after_every_rpc(stub):
    for id in (101, 999, 0):
        with contextlib.suppress(grpc.RpcError):
            stub.GetUser(pb.GetUserRequest(id=id), timeout=TIMEOUT)
    list(stub.StreamUsers(pb.StreamUsersRequest(), timeout=TIMEOUT))
    time.sleep(0.1)
    pool = database.current_engine().pool
    assert isinstance(pool, QueuePool)  # SQLite on a file: the pool that counts checkouts
    assert pool.checkedout() == 0


# --- streaming ----------------------------------------------------------------------

def test_stream_users_refuses_a_nul_in_the_filter(stub):
    """Found by the fuzz test: SQLite's LIKE stops at a NUL, so "\0" matched every user."""
    with pytest.raises(grpc.RpcError) as caught:
        list(stub.StreamUsers(pb.StreamUsersRequest(filter="a\0"), timeout=TIMEOUT))
    assert field_violations(caught.value) == {"filter": "must not contain NUL characters"}


def test_stream_users_sends_every_match_in_order(stub):
    names = [r.user.name for r in stub.StreamUsers(pb.StreamUsersRequest(filter="an"),
                                                    timeout=TIMEOUT)]
    page = stub.ListUsers(pb.ListUsersRequest(filter="an", page_size=100), timeout=TIMEOUT)
    assert names == [u.name for u in page.users] and names


def test_stream_users_stops_reading_when_the_client_cancels(grpc_server, stub):
    for batch in range(2):
        many = (pb.CreateUserRequest(name=f"Bulk {i}", email=f"bulk{batch}.{i}@example.com")
                for i in range(1000))
        assert stub.BulkCreateUsers(many, timeout=TIMEOUT).created_count == 1000
    try:
        stream = stub.StreamUsers(pb.StreamUsersRequest(), timeout=TIMEOUT)
        first = [next(stream) for _ in range(3)]
        stream.cancel()
        assert [r.user.id for r in first] == [101, 102, 103]
        deadline = time.monotonic() + 3
        while not any("went away" in line for line in grpc_server.logs()):
            assert time.monotonic() < deadline, grpc_server.logs()
            time.sleep(0.02)
        line = next(line for line in grpc_server.logs() if "went away" in line)
        counts = re.search(r"after (\d+) users; (\d+) rows read", line)
        assert counts is not None, line
        sent, read = map(int, counts.groups())
        assert 3 <= sent <= read < 2025, line
    finally:
        database.reset()


def test_bulk_create_reports_each_refusal(stub):
    before = user_count()
    requests = [
        pb.CreateUserRequest(name="Ann", email="ann@example.com"),
        pb.CreateUserRequest(name="", email="nobody@example.com"),
        pb.CreateUserRequest(name="Ann twin", email="ann@example.com"),
        pb.CreateUserRequest(name="Ada copy", email="ada.lovelace@example.com"),
    ]
    response = stub.BulkCreateUsers(iter(requests), timeout=TIMEOUT)
    assert response.created_count == 1
    assert [e.split(" ")[0] for e in response.errors] == ["#1", "#2", "#3"]
    assert user_count() == before + 1
    database.reset()


def test_bulk_create_creates_nothing_when_the_stream_fails(stub, caplog):
    """A cancel first looks like the end of the stream to the server: 30 tries, none commit."""
    before = user_count()

    def failing(n):
        yield pb.CreateUserRequest(name="Half", email=f"half{n}@example.com")
        raise RuntimeError("the client crashed mid-stream")

    with caplog.at_level(logging.CRITICAL, logger="grpc._channel"):
        for n in range(30):
            error = rpc_error(stub.BulkCreateUsers, failing(n))
            assert error.code() == grpc.StatusCode.UNKNOWN  # raised client side, then cancelled
    time.sleep(0.1)
    assert user_count() == before


def test_bulk_create_has_a_limit(stub):
    before = user_count()
    many = (pb.CreateUserRequest(name="N", email=f"n{i}@example.com") for i in range(1001))
    error = rpc_error(stub.BulkCreateUsers, many)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert user_count() == before


def test_lookup_users_answers_each_id_as_it_arrives(grpc_channel):
    lookup = user_lookup_pb2_grpc.UserLookupStub(grpc_channel)
    outbox: list = []
    ready = threading.Event()

    def requests():
        for id in (101, 999, 102):
            outbox.append(id)
            yield pb.GetUserRequest(id=id)
            assert ready.wait(TIMEOUT)  # the previous answer came before the next id goes
            ready.clear()

    answers = []
    for response in lookup.LookupUsers(requests(), timeout=TIMEOUT):
        answers.append((response.success, response.user.name or response.error_message))
        ready.set()
    assert answers == [(True, "Ada Lovelace"), (False, "user 999 not found"),
                       (True, "Alan Turing")]


# --- deadlines, auth, health, reflection, lifecycle --------------------------------

class SlowServicer(grpc_service.UserServicer):
    def __init__(self):
        self.started = threading.Event()

    def GetUser(self, request, context):
        self.started.set()
        time.sleep(0.5)
        return super().GetUser(request, context)


def test_deadline_exceeded():
    with grpc_service.start(name="grpc-slow", fresh_data=False, servicer=SlowServicer()) as slow, \
            grpc_service.channel(slow.url) as chan:
        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as caught:
            pb_grpc.UserServiceStub(chan).GetUser(pb.GetUserRequest(id=101), timeout=0.1)
        error = caught.value
        assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert time.monotonic() - started < 0.45


def test_token_auth():
    with grpc_service.start(name="grpc-auth", fresh_data=False, token="s3cret") as secured, \
            grpc_service.channel(secured.url) as chan:
        stub = pb_grpc.UserServiceStub(chan)
        request = pb.GetUserRequest(id=101)
        error = rpc_error(stub.GetUser, request)
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED and "missing" in error.details()
        error = rpc_error(stub.GetUser, request, metadata=[("authorization", "Bearer nope")])
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED and "invalid" in error.details()
        with pytest.raises(grpc.RpcError) as caught:
            list(stub.StreamUsers(pb.StreamUsersRequest(), timeout=TIMEOUT))
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        ok = stub.GetUser(request, timeout=TIMEOUT, metadata=[("authorization", "Bearer s3cret")])
        assert ok.user.id == 101
        health = health_pb2_grpc.HealthStub(chan)
        assert health.Check(health_pb2.HealthCheckRequest(), timeout=TIMEOUT).status == \
            health_pb2.HealthCheckResponse.SERVING


def test_health_reports_each_service(grpc_channel):
    health = health_pb2_grpc.HealthStub(grpc_channel)
    for service in ("", "user.UserService", "user.UserLookup"):
        status = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=TIMEOUT)
        assert status.status == health_pb2.HealthCheckResponse.SERVING
    error = rpc_error(health.Check, health_pb2.HealthCheckRequest(service="nope"))
    assert error.code() == grpc.StatusCode.NOT_FOUND


def test_health_watchers_hear_not_serving_before_the_server_stops():
    server = grpc_service.start(name="grpc-health", fresh_data=False)
    with grpc_service.channel(server.url) as chan:
        watch = health_pb2_grpc.HealthStub(chan).Watch(
            health_pb2.HealthCheckRequest(service="user.UserService"), timeout=TIMEOUT)
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        threading.Thread(target=server.stop).start()
        assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING


def test_reflection_lets_a_client_call_without_the_proto(grpc_channel):
    database_ = ProtoReflectionDescriptorDatabase(grpc_channel)
    assert set(grpc_service.SERVICE_NAMES) <= set(database_.get_services())
    pool = descriptor_pool.DescriptorPool(database_)
    method = pool.FindServiceByName("user.UserService").FindMethodByName("GetUser")
    request_class = message_factory.GetMessageClass(method.input_type)
    response_class = message_factory.GetMessageClass(method.output_type)
    get_user = grpc_channel.unary_unary("/user.UserService/GetUser",
                                        request_serializer=request_class.SerializeToString,
                                        response_deserializer=response_class.FromString)
    assert get_user(request_class(id=102), timeout=TIMEOUT).user.name == "Alan Turing"


def test_twenty_restarts_leave_one_server_answering():
    ports = [grpc_service.start(name="grpc-rerun", fresh_data=False).port for _ in range(20)]
    try:
        # The OS may hand a freed port out again, so compare distinct ports, not 20 of them.
        answering = []
        for port in sorted(set(ports)):
            with grpc_service.channel(f"127.0.0.1:{port}") as chan:
                try:
                    pb_grpc.UserServiceStub(chan).GetUser(pb.GetUserRequest(id=101), timeout=1)
                    answering.append(port)
                except grpc.RpcError as error:
                    assert error.code() == grpc.StatusCode.UNAVAILABLE
        assert answering == [ports[-1]]
        assert harness.running()["grpc-rerun"].port == ports[-1]
    finally:
        harness.running()["grpc-rerun"].stop()


def test_graceful_stop_finishes_calls_in_flight():
    servicer = SlowServicer()
    slow = grpc_service.start(name="grpc-grace", fresh_data=False, servicer=servicer, grace=2)
    chan = grpc_service.channel(slow.url)
    stub = pb_grpc.UserServiceStub(chan)
    future = stub.GetUser.future(pb.GetUserRequest(id=101), timeout=TIMEOUT)
    assert servicer.started.wait(TIMEOUT)
    slow.stop()
    assert future.result().user.id == 101
    error = rpc_error(stub.GetUser, pb.GetUserRequest(id=101))
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    chan.close()


def test_oversized_message_is_resource_exhausted(stub):
    before = user_count()
    huge = pb.CreateUserRequest(name="x" * (5 * 1024 * 1024), email="big@example.com")
    assert rpc_error(stub.CreateUser, huge).code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert user_count() == before


def test_bytes_that_are_no_message_get_grpcs_own_status(grpc_channel):
    """gRPC's statuscodes.md: "Error parsing request proto: INTERNAL". The servicer never runs,
    so this is the one INTERNAL a client can cause; generated messages never reach it."""
    raw = grpc_channel.unary_unary("/user.UserService/CreateUser")
    error = rpc_error(raw, b"\x0a\x02\xff\xfe")  # field 1 (name) holding invalid UTF-8
    assert error.code() == grpc.StatusCode.INTERNAL
    assert error.details() == "Exception deserializing request!"
