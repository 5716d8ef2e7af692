"""The S3 test server and its admin client, run by the S3 tools' own interpreter (.venv-s3).

moto and boto3 never enter the agent's virtualenv (botocore pins python-dateutil<3, the agent's
pinned kubernetes client needs >=3), so the tests run this script with ``.venv-s3/bin/python``
and read what it prints:

    _moto_admin.py serve
        start moto in server mode on 127.0.0.1, print its port, serve until stdin closes
    _moto_admin.py auth-users ENDPOINT NAME=ACTION[,ACTION...] ...
        create IAM users allowed those actions on every resource, then switch moto's
        authentication on; print {"NAME": {"access_key_id": ..., "secret_access_key": ...}}
    _moto_admin.py kms-key ENDPOINT
        create a KMS key; print {"key_id": ...}

Admin calls sign with a dummy key: they must run while moto's authentication is still off.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.request
from typing import Any

import boto3

REGION = "us-east-1"
ADMIN_KEY = "testing"


def serve() -> None:
    """Serve until our stdin closes, which also happens when the test process dies."""
    from moto.server import ThreadedMotoServer  # only this command needs the server's imports

    server = ThreadedMotoServer("127.0.0.1", 0, verbose=False)
    server.start()
    print(server.get_host_and_port()[1], flush=True)
    sys.stdin.read()


def _client(service: str, endpoint: str) -> Any:
    return boto3.client(service, endpoint_url=endpoint, region_name=REGION,
                        aws_access_key_id=ADMIN_KEY, aws_secret_access_key=ADMIN_KEY)


def _create_user(iam: Any, name: str, actions: list[str]) -> dict[str, str]:
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}
    iam.put_user_policy(UserName=name, PolicyName=f"{name}-policy", PolicyDocument=json.dumps(policy))
    return {"access_key_id": key["AccessKeyId"], "secret_access_key": key["SecretAccessKey"]}


def _require_authentication(endpoint: str) -> None:
    """From now on every request must be signed by an IAM user's key (moto's reset-auth; the
    body is how many more requests may pass unsigned)."""
    request = urllib.request.Request(f"{endpoint}/moto-api/reset-auth", data=b"0", method="POST",
                                     headers={"Content-Type": "application/octet-stream"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        answer.read()


def auth_users(endpoint: str, specs: list[str]) -> dict[str, dict[str, str]]:
    iam = _client("iam", endpoint)
    users = {}
    for spec in specs:
        name, _, actions = spec.partition("=")
        users[name] = _create_user(iam, name, actions.split(","))
    _require_authentication(endpoint)
    return users


def kms_key(endpoint: str) -> dict[str, str]:
    return {"key_id": _client("kms", endpoint).create_key()["KeyMetadata"]["KeyId"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve")
    users = commands.add_parser("auth-users")
    users.add_argument("endpoint")
    users.add_argument("users", nargs="+", metavar="NAME=ACTION[,ACTION...]")
    kms = commands.add_parser("kms-key")
    kms.add_argument("endpoint")
    args = parser.parse_args()
    if args.command == "serve":
        serve()
    elif args.command == "auth-users":
        print(json.dumps(auth_users(args.endpoint, args.users)))
    else:
        print(json.dumps(kms_key(args.endpoint)))


if __name__ == "__main__":
    main()
