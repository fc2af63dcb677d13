"""Breaking changes between two versions of a ``.proto`` file, found from their descriptors.

``descriptor(path)`` compiles one ``.proto`` with protoc (in this process, as
:mod:`labsupport.codegen` does) into a ``FileDescriptorProto``: what protoc
knows about the file, with no generated code to import. ``breaking_changes``
compares two of them field number by field number, because the wire carries
numbers, never names.

``PAIRS`` are real old/new pairs under ``protos/interview/pairs``; the old
file of each says in an ``// expect:`` comment what a detector must find.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor_pb2 import FileDescriptorProto
from google.protobuf.message import Message
from grpc_tools import protoc

from ...codegen import PROTOS, ProtocError

__all__ = ["PAIRS_DIR", "EVOLUTION_DIR", "descriptor", "pairs", "expected", "breaking_changes",
           "message_classes", "Finding", "FileDescriptorProto"]

PAIRS_DIR = PROTOS / "interview" / "pairs"
EVOLUTION_DIR = PROTOS / "interview" / "evolution"

Finding = tuple[str, str, int]   # ("removed" | "type" | "reused", "Message.Nested", number)


def descriptor(path: Path) -> FileDescriptorProto:
    """The ``FileDescriptorProto`` protoc makes of the ``.proto`` at ``path``."""
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "set.pb"
        status = protoc.main(["grpc_tools.protoc", f"-I{path.parent}",
                              f"--descriptor_set_out={out}", path.name])
        if status != 0:
            raise ProtocError(f"protoc failed ({status}) on {path.name}")
        files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    return files.file[0]


def pairs() -> list[str]:
    """The names of the real pairs: ``compatible``, ``removed``, ..."""
    return sorted(p.name.removesuffix("_old.proto") for p in PAIRS_DIR.glob("*_old.proto"))


def expected(pair: str) -> set[Finding]:
    """What the ``// expect:`` line of a pair's old file says a detector must find."""
    text = (PAIRS_DIR / f"{pair}_old.proto").read_text()
    line = re.search(r"//\s*expect:\s*(.*)", text)
    if line is None or line.group(1).strip() == "nothing":
        return set()
    findings = set()
    for item in line.group(1).split(","):
        kind, message, number = item.split()
        findings.add((kind, message, int(number)))
    return findings


def breaking_changes(old: FileDescriptorProto,
                     new: FileDescriptorProto) -> set[tuple[str, str, int]]:
    """Changes in ``new`` that break readers or writers of ``old``, per message and number.

    - ``removed``: a number ``old`` used is gone from ``new`` and not reserved;
    - ``type``: the same field (number and name) now has another type or cardinality;
    - ``reused``: a number now means another field (new name and type), or a
      number ``old`` reserved is used again.

    A rename with the same type is not reported: the bytes are the same.
    """
    def messages(found, prefix=""):
        for message in found:
            yield f"{prefix}{message.name}", message
            yield from messages(message.nested_type, f"{prefix}{message.name}.")

    def reserved(message):
        return {n for r in message.reserved_range for n in range(r.start, r.end)}

    def shape(field):   # what the bytes mean; packages differ between versions
        repeated = field.label == field.LABEL_REPEATED
        return field.type, field.type_name.rsplit(".", 1)[-1], repeated

    findings = set()
    new_messages = dict(messages(new.message_type))
    for name, before in messages(old.message_type):
        after = new_messages.get(name)
        if after is None:
            continue
        new_fields = {f.number: f for f in after.field}
        for field in before.field:
            now = new_fields.get(field.number)
            if now is None:
                if field.number not in reserved(after):
                    findings.add(("removed", name, field.number))
            elif shape(now) != shape(field):
                kind = "type" if now.name == field.name else "reused"
                findings.add((kind, name, field.number))
        for number in new_fields.keys() & reserved(before):
            findings.add(("reused", name, number))
    return findings


def message_classes(proto: FileDescriptorProto) -> dict[str, type[Message]]:
    """Message classes built from a descriptor in a pool of their own (no generated code)."""
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    classes = message_factory.GetMessageClassesForFiles([proto.name], pool)
    prefix = f"{proto.package}." if proto.package else ""
    return {name.removeprefix(prefix): cls for name, cls in classes.items()}
