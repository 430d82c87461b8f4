"""The lock files (`make lock`): the tests run on the versions the layer ships, and nothing floats.

layers/shared/requirements.lock is what `sam build` installs into the layer (with
--require-hashes); requirements-dev.lock is what `make dev` installs. The second is resolved under
the first as a constraint, so every package the layer ships has the same version in both, and in
the environment these tests run in. A drift between them fails here, naming the package.
"""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
LAYER_REQUIREMENTS = ROOT / "layers" / "shared" / "requirements.txt"
LAYER_LOCK = ROOT / "layers" / "shared" / "requirements.lock"
DEV_LOCK = ROOT / "requirements-dev.lock"

# One pinned requirement of a lock: `name==version[ ; marker] \` followed by its hash lines.
PIN = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s;\\]+)"
    r"(?:\s*;\s*(?P<marker>[^\\]+?))?\s*\\?$"
)


def locked_versions(text: str) -> dict[str, str]:
    """Map each package of a lock (whose marker holds here) to its pinned version.

    Raises:
        AssertionError: a pin without a hash, which --require-hashes would refuse.
    """
    versions: dict[str, str] = {}
    lines = text.splitlines()
    for number, line in enumerate(lines):
        match = PIN.match(line)
        if match is None:
            continue
        following = lines[number + 1] if number + 1 < len(lines) else ""
        assert "--hash=sha256:" in following, f"{match['name']}: pinned without a hash"
        marker = match["marker"]
        if marker and not Requirement(f"x; {marker}").marker.evaluate():  # type: ignore[union-attr]
            continue
        versions[canonicalize_name(match["name"])] = match["version"]
    return versions


def drift(layer: dict[str, str], other: dict[str, str]) -> dict[str, tuple[str, str | None]]:
    """Packages of the layer whose version differs in `other` (or is missing there)."""
    return {name: (version, other.get(name)) for name, version in layer.items() if other.get(name) != version}


def top_level_pins(text: str) -> dict[str, str]:
    """The `name==version` requirements of a requirements file, comments left out."""
    pins = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            requirement = Requirement(line)
            (specifier,) = requirement.specifier
            assert specifier.operator == "==", f"{requirement.name}: not pinned exactly"
            pins[canonicalize_name(requirement.name)] = specifier.version
    return pins


@pytest.fixture(scope="module")
def layer_lock() -> dict[str, str]:
    return locked_versions(LAYER_LOCK.read_text())


def test_dev_lock_pins_every_layer_package_at_the_layer_version(layer_lock: dict[str, str]) -> None:
    # Given
    dev_lock = locked_versions(DEV_LOCK.read_text())

    # When / Then
    assert drift(layer_lock, dev_lock) == {}


def test_test_environment_runs_the_versions_the_layer_ships(layer_lock: dict[str, str]) -> None:
    # Given / When
    installed = {name: metadata.version(name) for name in layer_lock}

    # Then
    assert drift(layer_lock, installed) == {}


def test_layer_lock_follows_the_layer_requirements(layer_lock: dict[str, str]) -> None:
    # Given
    requested = top_level_pins(LAYER_REQUIREMENTS.read_text())

    # When / Then: a pin edited in requirements.txt without `make lock` is caught
    assert drift(requested, layer_lock) == {}


def test_pyproject_pins_powertools_exactly_as_the_layer() -> None:
    # Given
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requested = top_level_pins(LAYER_REQUIREMENTS.read_text())

    # When
    powertools = [Requirement(line) for line in project["dependencies"] if "powertools" in line]

    # Then
    assert [str(requirement.specifier) for requirement in powertools] == [
        f"=={requested['aws-lambda-powertools']}"
    ]


def test_drift_names_the_package_whose_version_differs(layer_lock: dict[str, str]) -> None:
    # Given: the dev lock as it would be with pydantic moved on alone
    text = DEV_LOCK.read_text()
    moved = re.sub(r"(?m)^pydantic==\S+", "pydantic==2.99.0", text)

    # When
    found = drift(layer_lock, locked_versions(moved))

    # Then
    assert found == {"pydantic": (layer_lock["pydantic"], "2.99.0")}


def test_locked_versions_refuses_a_pin_without_hash() -> None:
    # Given
    text = "requests==2.34.2\n    # via -r requirements.txt\n"

    # When / Then
    with pytest.raises(AssertionError, match="requests: pinned without a hash"):
        locked_versions(text)
