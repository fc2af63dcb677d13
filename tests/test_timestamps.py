"""Every lab writes an instant the same way: RFC 3339 in UTC, with its offset (``Z``)."""

from __future__ import annotations

import datetime as dt
import re

import requests

from labsupport import chat, database, graphql_api, grpc_service, long_polling, rest, sse
from labsupport.database import ChatMessage
from labsupport.labs.grpc_service.server import user_service_pb2 as pb
from labsupport.labs.grpc_service.server import user_service_pb2_grpc as pb_grpc

RFC3339_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z")
#: User 101 was created at the sample data's epoch.
ADA_CREATED = "2024-01-01T12:00:00Z"


def is_rfc3339_utc(text: str) -> bool:
    return bool(RFC3339_UTC.fullmatch(text))


def test_the_same_user_has_the_same_created_at_over_rest_graphql_and_grpc():
    database.reset()
    with rest.start(name="rest-timestamps", fresh_data=False) as rest_server, \
            graphql_api.start(name="graphql-timestamps", fresh_data=False) as graphql_server, \
            grpc_service.start(name="grpc-timestamps", fresh_data=False) as grpc_server, \
            grpc_service.channel(grpc_server.url) as channel:
        over_rest = requests.get(f"{rest_server.url}/api/v1/users/101", timeout=5).json()
        over_graphql = requests.post(f"{graphql_server.url}/graphql", timeout=5, json={
            "query": '{ user(id: "101") { createdAt } }'}).json()
        over_grpc = pb_grpc.UserServiceStub(channel).GetUser(pb.GetUserRequest(id=101),
                                                               timeout=5)
    assert over_rest["created_at"] == ADA_CREATED
    assert over_graphql == {"data": {"user": {"createdAt": ADA_CREATED}}}
    seconds = dt.datetime.fromisoformat(ADA_CREATED).timestamp()
    assert over_grpc.user.created_at == seconds  # Unix seconds: UTC by definition


def test_every_graphql_timestamp_is_rfc3339_utc():
    query = ('{ user(id: "101") { createdAt orders(limit: 1) { createdAt }'
             ' posts(limit: 1) { createdAt comments { createdAt } } } }')
    result = graphql_api.run_query(query)
    assert result.data is not None, result.errors
    user = result.data["user"]
    stamps = [user["createdAt"], user["orders"][0]["createdAt"], user["posts"][0]["createdAt"],
              user["posts"][0]["comments"][0]["createdAt"]]
    assert all(map(is_rfc3339_utc, stamps)), stamps


def test_streaming_labs_and_chat_write_rfc3339_utc():
    broker = sse.Broker()
    inbox = long_polling.Inbox(history=5)
    message = ChatMessage(user_id=101, room_id="general", message="hi",
                          timestamp=database.utcnow())
    stamps = [broker.publish("news", {}).timestamp, inbox.add("note", {})["timestamp"],
              chat.message_fields(message, "Ada")["timestamp"]]
    assert all(map(is_rfc3339_utc, stamps)), stamps
