"""Write deploy/observability/k8s/prometheusrule.yaml from prometheus/rules.yml.

The compose profile loads rules.yml; the Kubernetes component carries the same groups in a
PrometheusRule. Edit rules.yml, then run ``python deploy/observability/render_prometheusrule.py``
(``--check``: exit 1 if the PrometheusRule is out of date). tests/deploy/test_observability.py
checks that they agree.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
RULES = HERE / "prometheus" / "rules.yml"
OUT = HERE / "k8s" / "prometheusrule.yaml"
HEADER = (
    "# Generated from deploy/observability/prometheus/rules.yml by\n"
    "# deploy/observability/render_prometheusrule.py: edit rules.yml and rerun it.\n"
    "# Runbook: docs/OPERATIONS.md.\n"
)


def render() -> str:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    doc = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "emostream",
            "namespace": "emostream",
            "labels": {"app.kubernetes.io/name": "emostream",
                       "app.kubernetes.io/part-of": "emostream"},
        },
        "spec": {"groups": groups},
    }
    return HEADER + yaml.safe_dump(doc, sort_keys=False, width=1000, allow_unicode=True)


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if OUT.read_text() != text:
            print(f"{OUT} is out of date: run python {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
