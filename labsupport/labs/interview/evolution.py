"""Q7's protobuf evolution: a profile service at v1 and at v2, old and new clients calling both.

``protos/interview/evolution/profile_v1.proto`` and ``profile_v2.proto`` are
compiled at run time with :mod:`labsupport.codegen`. Their Python packages
differ (protobuf keeps one definition per full name in a process), but both
servers answer the same method path, ``/evolution.ProfileService/GetProfile``,
so on the wire an old client cannot tell them apart: it sees only bytes.
"""

from __future__ import annotations

from concurrent import futures
from types import ModuleType
from typing import Any

import grpc

from ... import codegen
from ...harness import LOOPBACK, ServerHandle, grpc_server, register, stop_previous
from ..grpc_service.server import channel
from .protodiff import EVOLUTION_DIR

__all__ = ["METHOD", "PROFILE", "versions", "start", "get_profile"]

METHOD = "/evolution.ProfileService/GetProfile"
PROFILE = {"id": 101, "name": "Ada Lovelace", "email": "ada.lovelace@example.com",
           "phone": "+44 20 7946 0018", "tags": ["mathematics", "engines"],
           "avatar_url": "/avatars/101.png"}


def versions() -> dict[str, ModuleType]:
    """The generated modules: ``{"v1": profile_v1_pb2, "v2": profile_v2_pb2}``."""
    return {v: codegen.load(f"profile_{v}", EVOLUTION_DIR)[0] for v in ("v1", "v2")}


def _profile(version: str, module: ModuleType) -> Any:
    if version == "v1":
        return module.Profile(id=PROFILE["id"], name=PROFILE["name"], email=PROFILE["email"],
                              phone=PROFILE["phone"])
    return module.Profile(id=PROFILE["id"], display_name=PROFILE["name"],
                          email=PROFILE["email"], tags=PROFILE["tags"],
                          avatar_url=PROFILE["avatar_url"])


def start(version: str, *, name: str | None = None) -> ServerHandle:
    """Serve ``GetProfile`` as the ``version`` ("v1" or "v2") server on 127.0.0.1:<free port>."""
    module = versions()[version]
    name = name or f"profiles-{version}"
    stop_previous(name)

    def get_profile(request: Any, context: grpc.ServicerContext) -> Any:
        if request.id != PROFILE["id"]:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no profile {request.id}")
        return _profile(version, module)

    handler = grpc.method_handlers_generic_handler("evolution.ProfileService", {
        "GetProfile": grpc.unary_unary_rpc_method_handler(
            get_profile, request_deserializer=module.GetProfileRequest.FromString,
            response_serializer=module.Profile.SerializeToString)})
    server = grpc_server(futures.ThreadPoolExecutor(max_workers=2),
                         handlers=[handler], options=[("grpc.so_reuseport", 0)])
    port = server.add_insecure_port(f"{LOOPBACK}:0")
    server.start()
    return register(ServerHandle(name, port, lambda: server.stop(0).wait(5), scheme="grpc"))


def get_profile(target: str, client: str, id: int = 101) -> tuple[Any, bytes]:
    """Call ``target`` as a ``client`` ("v1" or "v2") would: the decoded message and its bytes."""
    module = versions()[client]
    with channel(target) as ch:
        call = ch.unary_unary(METHOD, request_serializer=module.GetProfileRequest.SerializeToString,
                              response_deserializer=lambda raw: raw)
        raw = call(module.GetProfileRequest(id=id), timeout=5)
    return module.Profile.FromString(raw), raw
