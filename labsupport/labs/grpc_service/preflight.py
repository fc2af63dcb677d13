"""The pre-flight's check of this lab: ``python -m labsupport.preflight`` runs :func:`probe`."""

from __future__ import annotations

from grpc_health.v1 import health_pb2, health_pb2_grpc

from . import server as grpc_service

TIMEOUT = 5


def probe() -> str:
    """Start the gRPC lab's server, call its health service, say what came back."""
    with grpc_service.start(name="preflight-grpc", fresh_data=False) as server, \
            grpc_service.channel(server.url) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=TIMEOUT)
        return f"health -> {health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)}"
