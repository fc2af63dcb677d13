"""Every lab that uses the database starts with ``fresh_data=False`` in a fresh kernel.

Each case runs in its own interpreter, so nothing has made a database yet: the
lab's first request must find the sample data all the same.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # a whole system: `make quick` leaves it out

FIRST_REQUEST = {
    "rest": """
import requests
from labsupport import rest
server = rest.start(fresh_data=False)
print(requests.get(f"{server.url}/api/v1/users/101", timeout=5).json()["id"])
""",
    "graphql": """
import requests
from labsupport import graphql_api
server = graphql_api.start(fresh_data=False)
body = requests.post(f"{server.url}/graphql", json={"query": "{ user(id: 101) { id } }"},
                     timeout=5).json()
print(body["data"]["user"]["id"])
""",
    "grpc": """
from labsupport import grpc_service
pb, pb_grpc = grpc_service.user_service_pb2, grpc_service.user_service_pb2_grpc
server = grpc_service.start(fresh_data=False)
with grpc_service.channel(server.url) as channel:
    print(pb_grpc.UserServiceStub(channel).GetUser(pb.GetUserRequest(id=101), timeout=5).user.id)
""",
    "websockets": """
import requests
from labsupport import chat
server = chat.start(fresh_data=False)
response = requests.get(f"{server.url}/api/chat/general/messages", timeout=5,
                        headers={"Authorization": f"Bearer {server.token_for(101)}"})
print(response.status_code, 101)
""",
    "queues": """
import requests
from labsupport import queues
broker = queues.start()
app = queues.pipeline.start(broker, fresh_data=False)
print(requests.post(f"{app.url}/orders", json={"user_id": 101, "item": "Keyboard"},
                    timeout=5).json()["user_id"])
""",
}


@pytest.mark.parametrize("lab", sorted(FIRST_REQUEST))
def test_start_without_fresh_data_in_a_fresh_kernel(lab: str) -> None:
    run = subprocess.run([sys.executable, "-c", FIRST_REQUEST[lab]], capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split()[-1] == "101", run.stdout
