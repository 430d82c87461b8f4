"""Fixtures for the template suite: template.yaml as written, and as SAM translates it (offline)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from sam_translation import load_sam_template, translate


@pytest.fixture(scope="session")
def sam_template_session() -> dict[str, Any]:
    return load_sam_template()


@pytest.fixture
def sam_template(sam_template_session: dict[str, Any]) -> dict[str, Any]:
    """template.yaml as written (a fresh copy: tests may change it)."""
    return copy.deepcopy(sam_template_session)


@pytest.fixture(scope="session")
def cfn_session(sam_template_session: dict[str, Any]) -> dict[str, Any]:
    return translate(sam_template_session)


@pytest.fixture
def cfn(cfn_session: dict[str, Any]) -> dict[str, Any]:
    """The translated CloudFormation template (a fresh copy: tests may change it)."""
    return copy.deepcopy(cfn_session)
