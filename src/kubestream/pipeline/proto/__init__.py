"""Protobuf schemas of the output records (``*.proto``) and their generated modules.

Regenerate after editing a ``.proto`` (tests/pipeline/test_pipeline_proto_regen.py checks it)::

    cd src/kubestream/pipeline/proto
    python -m grpc_tools.protoc -I. --python_out=. --pyi_out=. kubestream.proto k8stream.proto
"""
