#!/usr/bin/env bash
# Regenerates the checked-in _pb2 modules (the pprof library's, the queue record's, Pyroscope's
# shared types, push request and querier messages) from their .proto files.
#
# protoc comes from grpcio-tools, installed into a throwaway virtualenv so it never becomes a
# runtime dependency. The pinned release bundles protoc 26.x, whose generated code (gencode 5.26)
# loads on every protobuf runtime the project allows (>=5.26,<8): a runtime refuses gencode that
# is newer than itself, never older. The proto path is the repository root, so the descriptor is
# registered as "shared/pprof/profile.proto" and cannot clash with another "profile.proto".
set -euo pipefail
cd "$(dirname "$0")/.."

GRPCIO_TOOLS_VERSION="${GRPCIO_TOOLS_VERSION:-1.64.3}"
PYTHON="${PYTHON:-python3}"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

"$PYTHON" -m venv "$tmp/venv"
"$tmp/venv/bin/python" -m pip install --quiet "grpcio-tools==${GRPCIO_TOOLS_VERSION}"
"$tmp/venv/bin/python" -m grpc_tools.protoc \
    --proto_path=. \
    --python_out=. \
    --pyi_out=. \
    shared/pprof/profile.proto shared/record.proto shared/pyroscope_types.proto \
    services/ingest_api/push.proto services/query_api/querier.proto

echo "generated shared/pprof/*_pb2.py, shared/record_pb2.py, shared/pyroscope_types_pb2.py, services/ingest_api/push_pb2.py, services/query_api/querier_pb2.py and their .pyi with grpcio-tools ${GRPCIO_TOOLS_VERSION}"
