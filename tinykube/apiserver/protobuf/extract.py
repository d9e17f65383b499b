"""Build ``fields.json.gz``: the protobuf field numbers of the built-in Kubernetes types.

kubectl and client-go's typed clients send request bodies as protobuf
(``application/vnd.kubernetes.protobuf``). Decoding them needs upstream's field numbers,
which are the wire contract of ``k8s.io/api/*/generated.proto``. Every client-go binary
embeds those files' descriptors (gzipped ``FileDescriptorProto``s); this tool reads them
out of a kubectl binary and keeps, per message, ``number -> [name, type, label,
type_name]`` plus the map-entry flag. Run: ``python -m tinykube.apiserver.protobuf.extract
/path/to/kubectl``.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import sys
import zlib

from google.protobuf import descriptor_pb2
from google.protobuf.message import DecodeError

GZIP_HEADER = re.compile(rb"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff")
OUTPUT = os.path.join(os.path.dirname(__file__), "fields.json.gz")
SCAN_WINDOW = 4_000_000


def descriptors(binary: bytes) -> list[descriptor_pb2.FileDescriptorProto]:
    """Every ``k8s.io/...generated.proto`` descriptor embedded in a Go binary."""
    out: dict[str, descriptor_pb2.FileDescriptorProto] = {}
    for match in GZIP_HEADER.finditer(binary):
        try:
            raw = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(
                binary[match.start():match.start() + SCAN_WINDOW])
        except zlib.error:
            continue
        fd = descriptor_pb2.FileDescriptorProto()
        try:
            fd.ParseFromString(raw)
        except DecodeError:
            continue
        if fd.name.startswith("k8s.io/") and fd.name.endswith("generated.proto"):
            out.setdefault(fd.name, fd)
    return list(out.values())


def _messages(prefix: str, messages, table: dict) -> None:
    for msg in messages:
        name = f"{prefix}.{msg.name}"
        table[name] = {
            "fields": {str(f.number): [f.name, f.type, f.label, f.type_name] for f in msg.field},
            "map": bool(msg.options.map_entry),
        }
        _messages(name, msg.nested_type, table)


def field_table(files: list[descriptor_pb2.FileDescriptorProto]) -> dict:
    table: dict = {}
    for fd in files:
        _messages("." + fd.package, fd.message_type, table)
    return table


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {argv[0]} KUBECTL_BINARY", file=sys.stderr)
        return 2
    with open(argv[1], "rb") as f:
        files = descriptors(f.read())
    if not files:
        print("no Kubernetes protobuf descriptors found", file=sys.stderr)
        return 1
    table = field_table(files)
    with gzip.open(OUTPUT, "wt") as out:
        json.dump(table, out, separators=(",", ":"), sort_keys=True)
    print(f"{len(files)} files, {len(table)} messages -> {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
