"""Write the chart's values.schema.json: the chart's own keys (values.base.json, edited by hand)
plus the kubestream configuration tree, generated from the settings model
(``kubestream.config.jsonschema``), so the chart refuses at render what the agent would refuse.

    .venv/bin/python deploy/helm/schema/generate.py          # rewrite the schema
    .venv/bin/python deploy/helm/schema/generate.py --check  # exit 1 if it is out of date

tests/deploy/test_deploy_helm.py fails when the committed schema differs from a fresh run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from kubestream.config.jsonschema import config_definitions

HERE = Path(__file__).resolve().parent
BASE = HERE / "values.base.json"
TARGET = HERE.parent / "kubestream" / "values.schema.json"


def render() -> str:
    """The values.schema.json text for the current settings model."""
    schema = json.loads(BASE.read_text())
    schema["definitions"] = {**config_definitions(), **schema.get("definitions", {})}
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="generate deploy/helm/kubestream/values.schema.json")
    parser.add_argument("--check", action="store_true", help="only report whether the schema is up to date")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if TARGET.read_text() != text:
            print(f"{TARGET} is out of date: run {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
