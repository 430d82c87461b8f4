"""template.yaml as written and as SAM translates it, offline (used by the fixtures and tests)."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
LINT_REGION = "eu-central-1"


class OfflineManagedPolicyLoader:
    """Stands in for the loader that asks IAM for managed policy ARNs: the template names none."""

    def load(self) -> dict[str, str]:
        return {}


def load_sam_template(path: Path = TEMPLATE) -> dict[str, Any]:
    return yaml_parse(path.read_text())


def translate(sam_template: dict[str, Any]) -> dict[str, Any]:
    """SAM -> CloudFormation, as CloudFormation's transform would, without AWS (like cfn-lint does).

    Local CodeUri/ContentUri folders become S3 URIs first: the translator only accepts those
    (``sam package`` does the same on the way to a deploy).
    """
    template = copy.deepcopy(sam_template)
    for resource in template.get("Resources", {}).values():
        properties = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if isinstance(properties.get(key), str):
                properties[key] = f"s3://offline-bucket/{properties[key]}"
    # The translator resolves pseudo parameters from the boto session's region.
    os.environ.setdefault("AWS_DEFAULT_REGION", LINT_REGION)
    return transform(template, {}, OfflineManagedPolicyLoader())
