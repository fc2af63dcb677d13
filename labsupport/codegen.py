"""Compile the lab's ``.proto`` files at run time, in-process, with grpcio-tools.

The generated modules are never committed. They are written to a cache
directory named after a hash of every ``.proto`` file and of the compiler and
runtime versions, so editing a ``.proto`` (or upgrading grpcio-tools) gives a
fresh directory, while re-running a notebook reuses the last one::

    user_service_pb2, user_service_pb2_grpc = codegen.load("user_service")

``load`` also puts that directory on ``sys.path``, so the document's own
``import user_service_pb2`` works as printed.

The cache lives in the user's cache directory (``$XDG_CACHE_HOME`` or
``~/.cache``, under ``protocol-lab/grpc``) rather than inside the package: on
JupyterHub or conda the package directory is often read-only and shared by
everyone, while a cache directory is per user. If that is not writable either,
a private temporary directory is used for this process. The compiler runs in this process
(``grpc_tools.protoc.main``), never as a subprocess: forking a process that
already runs gRPC threads is unsafe.
"""

from __future__ import annotations

import atexit
import hashlib
import importlib
import os
import shutil
import sys
import tempfile
import threading
from pathlib import Path
from types import ModuleType

from google.protobuf import __version__ as protobuf_version
from grpc_tools import protoc
from grpc_tools.grpc_version import VERSION as grpc_tools_version

__all__ = ["PROTOS", "ProtocError", "generate", "load", "cache_root"]

#: Where the lab's ``.proto`` files live.
PROTOS = Path(__file__).resolve().parent.parent / "protos"

_lock = threading.Lock()
_fallback: Path | None = None


class ProtocError(RuntimeError):
    """protoc refused a ``.proto`` file (its message went to the kernel's stderr)."""


def cache_root() -> Path:
    """The directory that holds one subdirectory of generated code per hash."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "protocol-lab" / "grpc"


def _fingerprint(protos: list[Path]) -> str:
    digest = hashlib.sha256()
    digest.update(f"grpcio-tools {grpc_tools_version} protobuf {protobuf_version}".encode())
    for path in protos:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _writable_root() -> Path:
    root = cache_root()
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=root):
            return root
    except OSError:
        # A private directory made once per process, never a predictable name in a shared
        # /tmp: whatever is in it gets imported.
        global _fallback
        if _fallback is None:
            _fallback = Path(tempfile.mkdtemp(prefix="protocol-lab-grpc-"))
            atexit.register(shutil.rmtree, _fallback, ignore_errors=True)
        return _fallback


def generate(proto_dir: Path = PROTOS) -> Path:
    """Compile every ``.proto`` in ``proto_dir``; return the directory of generated code.

    Nothing is compiled when that directory already exists for these exact files.
    """
    protos = sorted(proto_dir.glob("*.proto"))
    if not protos:
        raise FileNotFoundError(f"no .proto files in {proto_dir}")
    root = _writable_root()
    target = root / _fingerprint(protos)
    with _lock:
        if target.is_dir():
            return target
        building = Path(tempfile.mkdtemp(prefix=".building-", dir=root))
        well_known = Path(protoc.__file__).parent / "_proto"
        status = protoc.main([
            "grpc_tools.protoc", f"-I{proto_dir}", f"-I{well_known}",
            f"--python_out={building}", f"--pyi_out={building}",
            f"--grpc_python_out={building}", *map(str, protos),
        ])
        if status != 0:
            shutil.rmtree(building, ignore_errors=True)
            raise ProtocError(f"protoc failed ({status}) on {', '.join(p.name for p in protos)}")
        try:
            building.rename(target)  # atomic: another kernel may have won the race
        except OSError:
            shutil.rmtree(building, ignore_errors=True)
    return target


def load(stem: str, proto_dir: Path = PROTOS) -> tuple[ModuleType, ModuleType]:
    """``(stem_pb2, stem_pb2_grpc)`` for ``protos/<stem>.proto``, generating if needed.

    protobuf keeps one descriptor per ``.proto`` file name for the life of the
    process, so after editing a ``.proto`` restart the kernel to load it.
    """
    directory = generate(proto_dir)
    with _lock:
        loaded = sys.modules.get(f"{stem}_pb2")
        if loaded is not None and Path(loaded.__file__ or "").parent != directory:
            raise RuntimeError(f"{stem}.proto changed since this kernel imported it: "
                               "restart the kernel to load the new definition")
        if str(directory) not in sys.path:
            sys.path.insert(0, str(directory))
            importlib.invalidate_caches()
    return importlib.import_module(f"{stem}_pb2"), importlib.import_module(f"{stem}_pb2_grpc")
