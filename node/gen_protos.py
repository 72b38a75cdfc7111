"""Generate the Python protobuf and gRPC stubs for petcd's .proto files.

Run by the build (``make setup``); the outputs are git-ignored and never edited by hand.
Proto import paths mirror Python package paths (``petcd/api/mvccpb/kv.proto`` is imported
as ``petcd.api.mvccpb.kv_pb2``), so protoc runs with ``node/`` as its only include root.
"""

from __future__ import annotations

import sys
from pathlib import Path

from grpc_tools import protoc  # type: ignore[import-untyped]

NODE_DIR = Path(__file__).resolve().parent
API_DIR = NODE_DIR / "petcd" / "api"


def main() -> int:
    protos = sorted(str(p.relative_to(NODE_DIR)) for p in API_DIR.rglob("*.proto"))
    args = [
        "grpc_tools.protoc",
        f"-I{NODE_DIR}",
        f"--python_out={NODE_DIR}",
        f"--pyi_out={NODE_DIR}",
        f"--grpc_python_out={NODE_DIR}",
        *protos,
    ]
    rc: int = protoc.main(args)
    if rc != 0:
        print(f"protoc failed with exit code {rc}", file=sys.stderr)
        return rc
    print(f"generated stubs for {len(protos)} proto files under {API_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
