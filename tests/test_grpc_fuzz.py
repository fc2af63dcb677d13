"""Generated messages: every RPC answers OK or a client-error status, never UNKNOWN/INTERNAL,
and a refused call changes nothing."""

from __future__ import annotations

import grpc
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from labsupport.database import User, db
from labsupport.labs.grpc_service.server import user_lookup_pb2_grpc
from labsupport.labs.grpc_service.server import user_service_pb2 as pb
from labsupport.labs.grpc_service.server import user_service_pb2_grpc as pb_grpc

SERVER_FAULTS = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL}
FUZZ = settings(max_examples=80, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])

int64s = st.integers(min_value=-(2**63), max_value=2**63 - 1)
int32s = st.integers(min_value=-(2**31), max_value=2**31 - 1)
short_text = st.text(max_size=30)
any_text = st.one_of(short_text, st.text(min_size=90, max_size=400))
emails = st.one_of(any_text, st.emails(), st.sampled_from(["ada.lovelace@example.com", ""]))
addresses = st.one_of(st.none(), st.builds(
    pb.Address, street=any_text, city=short_text, country=short_text, postal_code=any_text))
tags = st.lists(st.one_of(short_text, st.text(min_size=45, max_size=60)), max_size=25)


@pytest.fixture(scope="module")
def stub(grpc_channel):
    return pb_grpc.UserServiceStub(grpc_channel)


def snapshot() -> list[tuple]:
    rows = [(u.id, u.name, u.email, tuple(u.tags or ()),
             tuple(u.address.to_dict().values()) if u.address else None)
            for u in db.session.query(User).order_by(User.id)]
    db.session.remove()
    return rows


def call(method, request):
    """The call's status code; a refused call must leave the data exactly as it was."""
    before = snapshot()
    try:
        response = method(request, timeout=5)
    except grpc.RpcError as error:
        assert error.code() not in SERVER_FAULTS, f"{error.code()}: {error.details()}"
        assert error.details(), "an error needs a detail that says what was wrong"
        assert snapshot() == before, f"{error.code()} but the data changed"
        return error.code(), None
    return grpc.StatusCode.OK, response


def message(kind, address, **fields):
    request = kind(**fields)
    if address is not None:
        request.address.CopyFrom(address)
    return request


@FUZZ
@given(name=any_text, email=emails, address=addresses, tags=tags)
def test_create_user(stub, name, email, address, tags):
    request = message(pb.CreateUserRequest, address, name=name, email=email, tags=tags)
    code, response = call(stub.CreateUser, request)
    if code == grpc.StatusCode.OK:
        assert response.user.HasField("address") == (address is not None)
        stub.DeleteUser(pb.DeleteUserRequest(id=response.user.id), timeout=5)


@FUZZ
@given(id=st.one_of(int64s, st.integers(100, 130)), name=any_text, email=emails,
       address=addresses, tags=tags)
def test_update_user(stub, id, name, email, address, tags):
    request = message(pb.UpdateUserRequest, address, id=id, name=name, email=email, tags=tags)
    code, _ = call(stub.UpdateUser, request)
    assert code in {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT,
                    grpc.StatusCode.NOT_FOUND, grpc.StatusCode.ALREADY_EXISTS}


@FUZZ
@given(id=st.one_of(int64s, st.integers(95, 130)))
def test_get_and_delete_unknown(stub, id):
    code, _ = call(stub.GetUser, pb.GetUserRequest(id=id))
    if code == grpc.StatusCode.OK:
        return
    assert code == (grpc.StatusCode.NOT_FOUND if id > 0 else grpc.StatusCode.INVALID_ARGUMENT)
    assert call(stub.DeleteUser, pb.DeleteUserRequest(id=id))[0] == code


@FUZZ
@given(page_size=int32s, page_token=st.one_of(any_text, st.just("YWZ0ZXI6MTAz")),
       filter=any_text)
@example(page_size=0, page_token="", filter="\0")
def test_list_users(stub, page_size, page_token, filter):
    request = pb.ListUsersRequest(page_size=page_size, page_token=page_token, filter=filter)
    code, response = call(stub.ListUsers, request)
    if code == grpc.StatusCode.OK:
        assert len(response.users) <= min(page_size or 10, 100)
        assert all(filter.casefold() in user.name.casefold() for user in response.users)
    else:
        assert code == grpc.StatusCode.INVALID_ARGUMENT


@FUZZ
@given(filter=any_text)
@example(filter="\0")
def test_stream_users(stub, filter):
    try:
        for response in stub.StreamUsers(pb.StreamUsersRequest(filter=filter), timeout=5):
            assert filter.casefold() in response.user.name.casefold()  # LIKE ignores ASCII case
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


@FUZZ
@given(ids=st.lists(st.one_of(int64s, st.integers(95, 130)), max_size=10))
def test_lookup_users(grpc_channel, ids):
    lookup = user_lookup_pb2_grpc.UserLookupStub(grpc_channel)
    answers = list(lookup.LookupUsers(iter(pb.GetUserRequest(id=i) for i in ids), timeout=5))
    assert len(answers) == len(ids)
    for id, answer in zip(ids, answers, strict=True):
        if answer.success:
            assert answer.user.id == id
        else:
            assert not answer.HasField("user") and answer.error_message == f"user {id} not found"


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(st.tuples(any_text, emails, addresses, tags), max_size=8))
def test_bulk_create(stub, batch):
    requests = [message(pb.CreateUserRequest, a, name=n, email=e, tags=t) for n, e, a, t in batch]
    before = len(snapshot())
    code, response = call(stub.BulkCreateUsers, iter(requests))
    assert code == grpc.StatusCode.OK
    assert len(snapshot()) == before + response.created_count
    assert response.created_count + len(response.errors) == len(requests)
    for user in db.session.query(User).filter(User.id > 125):
        db.session.delete(user)
    db.session.commit()
    db.session.remove()
