"""Cold start: each handler's import time under python3.13, in a fresh interpreter per sample.

    python -m bench.coldstart [--samples 7]

The layer is mimicked as ``sam build`` makes it: ``pip install --require-hashes --target`` of
``layers/shared/requirements.lock`` plus the package, without bytecode; boto3 (the runtime's) sits
in its own directory after the layer on the path. Both are compared with the reference import
(``bench/reference_imports.py``) under the same conditions, samples interleaved so drift cancels
out. Variants: nothing compiled (the target), the layer compiled with
``compileall --invalidation-mode unchecked-hash`` (the gain of shipping bytecode), and the
runtime's boto3 compiled too (as a managed runtime may ship it).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import os
import shutil
import statistics
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
TMP = BENCH / ".tmp" / "coldstart"
REQUIREMENTS = ROOT / "layers" / "shared" / "requirements.lock"
PACKAGE = ROOT / "layers" / "shared" / "salesmanago_bridge"
SAMPLES = 9
PIP_INSTALL = ("-m", "pip", "install", "-q", "--disable-pip-version-check", "--root-user-action=ignore")
BREAKDOWN_TOP = 12
BREAKDOWN_SAMPLES = 3  # -X importtime runs per import; the breakdown is their per-package median
# What each top-level package belongs to, for the table of where an import's time goes; the rest
# (the standard library, the handler's own module, small libraries) is counted as "other".
FAMILIES = {
    "boto3": "boto3 and botocore",
    "botocore": "boto3 and botocore",
    "s3transfer": "boto3 and botocore",
    "dateutil": "boto3 and botocore",
    "six": "boto3 and botocore",
    "aws_xray_sdk": "X-Ray SDK (Tracer)",
    "wrapt": "X-Ray SDK (Tracer)",
    "pydantic": "pydantic",
    "pydantic_core": "pydantic",
    "typing_extensions": "pydantic",
    "annotated_types": "pydantic",
    "typing_inspection": "pydantic",
    "requests": "requests and urllib3",
    "urllib3": "requests and urllib3",
    "charset_normalizer": "requests and urllib3",
    "idna": "requests and urllib3",
    "certifi": "requests and urllib3",
    "aws_lambda_powertools": "Powertools",
    "salesmanago_bridge": "salesmanago_bridge (the layer package)",
}
OTHER_FAMILY = "other (standard library, small libraries)"
PROBE = (
    "import sys, time\n"
    "w, c = time.perf_counter(), time.process_time()\n"
    "__import__(sys.argv[1])\n"
    "sys.stdout.write(f'{time.perf_counter() - w} {time.process_time() - c}\\n')\n"
)
VARIANTS: dict[str, tuple[str, str, dict[str, str]]] = {
    "source": ("layer", "runtime", {}),  # as shipped today: no bytecode anywhere
    "layer_pyc": ("layer_pyc", "runtime", {}),  # bytecode shipped in the layer
    "all_pyc": ("layer_pyc", "runtime_pyc", {}),  # and the runtime's boto3 precompiled
    # No bytecode, tracing disabled: Powertools' Tracer then patches nothing (botocore is not
    # imported at init) but still loads the X-Ray SDK. What leaving tracing out would give.
    "untraced": ("layer", "runtime", {"POWERTOOLS_TRACE_DISABLED": "true"}),
}

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Dirs:
    layer: Path
    layer_pyc: Path
    runtime: Path
    runtime_pyc: Path

    def get(self, name: str) -> Path:
        return getattr(self, name)


def find_python313() -> str | None:
    """The real python3.13 executable (``BENCH_PYTHON313``, else ``python3.13`` on PATH)."""
    candidate = os.environ.get("BENCH_PYTHON313") or shutil.which("python3.13")
    if not candidate:
        return None
    found = subprocess.run(  # noqa: S603 - an interpreter we were pointed at
        [candidate, "-c", "import sys; print(sys.executable)"], capture_output=True, text=True, check=False
    )
    return found.stdout.strip() or None


def python_version(python: str) -> str:
    return subprocess.run(  # noqa: S603
        [python, "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def _pip(python: str, target: Path, *requirements: str) -> None:
    subprocess.run(  # noqa: S603 - pip of the interpreter under test, PyPI only
        [python, *PIP_INSTALL, "--no-compile", "--target", str(target), *requirements],
        check=True,
        stderr=subprocess.DEVNULL,
    )


def _compile(python: str, directory: Path) -> None:
    subprocess.run(  # noqa: S603
        [
            python,
            "-m",
            "compileall",
            "-q",
            "-j",
            "0",
            "--invalidation-mode",
            "unchecked-hash",
            str(directory),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def _purge_bytecode(directory: Path) -> None:
    for cache in directory.rglob("__pycache__"):
        shutil.rmtree(cache, ignore_errors=True)


def prepare(python: str, progress: Progress) -> Dirs:
    """Install the layer's requirements and boto3 once (per requirements), then lay out the variants."""
    boto3_version = importlib.metadata.version("boto3")
    stamp = hashlib.sha256(
        REQUIREMENTS.read_bytes() + boto3_version.encode() + python_version(python).encode()
    ).hexdigest()
    deps, runtime = TMP / "layer_deps", TMP / "runtime"
    stamp_file = TMP / "stamp"
    if not stamp_file.exists() or stamp_file.read_text() != stamp:
        progress(f"installing the layer's requirements and boto3=={boto3_version} for python3.13 (once)")
        shutil.rmtree(TMP, ignore_errors=True)
        TMP.mkdir(parents=True)
        _pip(python, deps, "--require-hashes", "-r", str(REQUIREMENTS))
        _pip(python, runtime, f"boto3=={boto3_version}")
        stamp_file.write_text(stamp)
    dirs = Dirs(TMP / "layer", TMP / "layer_pyc", runtime, TMP / "runtime_pyc")
    progress("laying out the layer (source and compiled) with the current package")
    for directory in (dirs.layer, dirs.layer_pyc):
        shutil.rmtree(directory, ignore_errors=True)
    _purge_bytecode(deps)
    _purge_bytecode(runtime)
    shutil.copytree(deps, dirs.layer, symlinks=True)
    shutil.copytree(PACKAGE, dirs.layer / PACKAGE.name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(dirs.layer, dirs.layer_pyc, symlinks=True)
    _compile(python, dirs.layer_pyc)
    if not dirs.runtime_pyc.exists():
        shutil.copytree(runtime, dirs.runtime_pyc, symlinks=True)
        _compile(python, dirs.runtime_pyc)
    return dirs


def lambda_env(task_root: Path) -> dict[str, str]:
    """The environment a deployed function sees (template.yaml Globals plus Lambda's own)."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "PYTHONDONTWRITEBYTECODE": "1",
        "LAMBDA_TASK_ROOT": str(task_root),
        "AWS_LAMBDA_FUNCTION_NAME": "salesmanago-bridge-bench",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "AWS_REGION": "eu-central-1",
        "AWS_DEFAULT_REGION": "eu-central-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "STAGE": "bench",
        "MAX_PARALLEL_REQUESTS": "4",
        "IDEMPOTENCY_TABLE_NAME": "bench-idempotency",
        "POWERTOOLS_SERVICE_NAME": "salesmanago-bridge",
        "POWERTOOLS_METRICS_NAMESPACE": "SalesmanagoBridge",
        "POWERTOOLS_PARAMETERS_SSM_DECRYPT": "true",
        "POWERTOOLS_PARAMETERS_MAX_AGE": "300",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "POWERTOOLS_LOGGER_LOG_EVENT": "false",
    }


def targets() -> dict[str, tuple[Path, str]]:
    """name -> (working directory, module): the reference, then every function's ``app``."""
    found = {"reference": (BENCH, "reference_imports")}
    for app in sorted((ROOT / "functions").glob("*/app.py")):
        found[app.parent.name] = (app.parent, "app")
    return found


def _probe(python: str, cwd: Path, module: str, dirs: Dirs, variant: str, *flags: str) -> Any:
    layer, runtime, extra = VARIANTS[variant]
    env = {
        **lambda_env(cwd),
        **extra,
        "PYTHONPATH": os.pathsep.join([str(dirs.get(layer)), str(dirs.get(runtime))]),
    }
    return subprocess.run(  # noqa: S603 - the interpreter under test
        [python, *flags, "-c", PROBE, module], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )


def failure_line(done: subprocess.CompletedProcess[str]) -> str:
    """What a failed probe said last (its exception), short enough for a table cell."""
    return (done.stderr.strip().splitlines() or ["failed"])[-1][:300]


def _self_times(stderr: str, module: str) -> Counter[str]:
    """Self times per top-level package, of the probed import's tree only: what the interpreter's
    startup imported before it is not seen by the probe's timer either."""
    entries = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _, name = line.split(":", 1)[1].split("|")
        entries.append((int(self_us), name))
    top_level = [i for i, (_, name) in enumerate(entries) if not name.startswith("  ")]
    end = max((i for i in top_level if entries[i][1].strip() == module), default=len(entries) - 1)
    start = max((i + 1 for i in top_level if i < end), default=0)
    totals: Counter[str] = Counter()
    for self_us, name in entries[start : end + 1]:
        totals[name.strip().split(".")[0]] += self_us
    return totals


def breakdown(python: str, cwd: Path, module: str, dirs: Dirs) -> dict[str, Any]:
    """``-X importtime`` self times: the largest top-level packages (median of runs, ms), and the
    fraction of the import each family of packages (``FAMILIES``) takes (median of the runs'
    fractions: within one run the machine's speed is the same for every package)."""
    runs = [
        _self_times(_probe(python, cwd, module, dirs, "source", "-X", "importtime").stderr, module)
        for _ in range(BREAKDOWN_SAMPLES)
    ]
    medians = Counter({name: statistics.median(run[name] for run in runs) for name in set().union(*runs)})
    fractions: dict[str, list[float]] = {}
    for run in runs:
        families: Counter[str] = Counter()
        for name, us in run.items():
            families[FAMILIES.get(name, OTHER_FAMILY)] += us
        total = sum(families.values()) or 1
        for family in set(FAMILIES.values()) | {OTHER_FAMILY}:
            fractions.setdefault(family, []).append(families[family] / total)
    shares = {family: round(statistics.median(values), 3) for family, values in fractions.items()}
    return {
        "packages": {name: round(us / 1000, 1) for name, us in medians.most_common(BREAKDOWN_TOP)},
        "family_fractions": dict(sorted(shares.items(), key=lambda item: -item[1])),
    }


def measure(python: str, dirs: Dirs, samples: int, progress: Progress) -> dict[str, Any]:
    """Median import time per (target, variant); ratios to the reference; the bytecode gain."""
    found = targets()
    progress(f"cold start: {len(found)} imports x {len(VARIANTS)} variants x {samples} samples")
    wall: dict[tuple[str, str], list[float]] = {}
    cpu: dict[tuple[str, str], list[float]] = {}
    errors: dict[str, str] = {}
    for _ in range(samples):
        for variant in VARIANTS:
            for name, (cwd, module) in found.items():
                if name in errors:
                    continue
                done = _probe(python, cwd, module, dirs, variant)
                if done.returncode != 0:
                    errors[name] = failure_line(done)
                    continue
                wall_s, cpu_s = (float(x) for x in done.stdout.split()[-2:])
                wall.setdefault((name, variant), []).append(wall_s)
                cpu.setdefault((name, variant), []).append(cpu_s)
    # CPU time is the primary figure: an import is CPU-bound work (files come from the page cache), and on
    # a shared machine wall-clock time also counts the waits for a CPU that a Lambda init does not have.
    medians = {key: statistics.median(values) * 1000 for key, values in cpu.items()}
    wall_medians = {key: statistics.median(values) * 1000 for key, values in wall.items()}
    result: dict[str, Any] = {
        "samples": samples,
        "statistic": "median CPU ms of the import in a fresh interpreter (wall-clock medians alongside)",
        "variants": {
            name: f"layer={layer}, runtime={runtime}" + "".join(f", {k}={v}" for k, v in extra.items())
            for name, (layer, runtime, extra) in VARIANTS.items()
        },
        "reference": {
            variant: round(medians[("reference", variant)], 1)
            for variant in VARIANTS
            if ("reference", variant) in medians
        },
        "reference_wall": {
            variant: round(wall_medians[("reference", variant)], 1)
            for variant in VARIANTS
            if ("reference", variant) in wall_medians
        },
        "handlers": {},
        "errors": errors,
    }
    for name, (cwd, module) in found.items():
        if name == "reference" or name in errors:
            continue
        row: dict[str, Any] = {}
        for variant in VARIANTS:
            ms, ref = medians[(name, variant)], medians[("reference", variant)]
            wall_ms, wall_ref = wall_medians[(name, variant)], wall_medians[("reference", variant)]
            row[f"{variant}_ms"] = round(ms, 1)
            row[f"{variant}_ratio"] = round(ms / ref, 3)
            row[f"{variant}_wall_ms"] = round(wall_ms, 1)
            row[f"{variant}_wall_ratio"] = round(wall_ms / wall_ref, 3)
        row["ratio_to_reference"] = row["source_ratio"]
        row["bytecode_gain_ms"] = round(row["source_ms"] - row["layer_pyc_ms"], 1)
        row["bytecode_gain_pct"] = round(100 * row["bytecode_gain_ms"] / row["source_ms"], 1)
        split = breakdown(python, cwd, module, dirs)
        row["import_breakdown_ms"] = split["packages"]
        row["import_family_fractions"] = split["family_fractions"]
        result["handlers"][name] = row
    ref_cwd, ref_module = found["reference"]
    split = breakdown(python, ref_cwd, ref_module, dirs)
    result["reference_breakdown_ms"] = split["packages"]
    result["reference_family_fractions"] = split["family_fractions"]
    return result


def table_lines(cold: dict[str, Any]) -> list[str]:
    ref = cold["reference"]
    lines = [
        f"| cold import, python3.13, CPU ms, median of {cold['samples']} | no bytecode | / reference "
        "| (wall ms, / reference) | tracing off, / reference | layer bytecode | gain | + runtime bytecode "
        "| / reference |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| reference (boto3 + Powertools + pydantic + requests) | {ref['source']:,.0f} | 1.00 "
        f"| {cold['reference_wall']['source']:,.0f}, 1.00 | {ref['untraced']:,.0f}, 1.00 "
        f"| {ref['layer_pyc']:,.0f} | {ref['source'] - ref['layer_pyc']:,.0f} "
        f"({100 * (ref['source'] - ref['layer_pyc']) / ref['source']:.0f}%) | {ref['all_pyc']:,.0f} | 1.00 |",
    ]
    for name, row in cold["handlers"].items():
        lines.append(
            f"| {name} | {row['source_ms']:,.0f} | {row['source_ratio']:.2f} "
            f"| {row['source_wall_ms']:,.0f}, {row['source_wall_ratio']:.2f} "
            f"| {row['untraced_ms']:,.0f}, {row['untraced_ratio']:.2f} | {row['layer_pyc_ms']:,.0f} "
            f"| {row['bytecode_gain_ms']:,.0f} ({row['bytecode_gain_pct']:.0f}%) "
            f"| {row['all_pyc_ms']:,.0f} | {row['all_pyc_ratio']:.2f} |"
        )
    for name, error in cold.get("errors", {}).items():
        lines.append(f"| {name} | import failed: {error} | | | | | | | |")
    return [*lines, "", *family_lines(cold)]


def family_lines(cold: dict[str, Any]) -> list[str]:
    """Where each import's time goes, in shares of the reference's import: each family's fraction
    of the import (``-X importtime``, median of runs) times the import's measured ratio to the
    reference. Approximate: the ratio's noise spreads over every row, and medians of fractions
    need not add up to exactly the total."""
    columns = {"reference": (1.0, cold.get("reference_family_fractions") or {})}
    for name, row in cold["handlers"].items():
        columns[name] = (row["source_ratio"], row.get("import_family_fractions") or {})
    if not all(fractions for _, fractions in columns.values()):
        return []
    families = sorted(
        {family for _, fractions in columns.values() for family in fractions},
        key=lambda family: (
            family == OTHER_FAMILY,
            -max(ratio * fractions.get(family, 0) for ratio, fractions in columns.values()),
        ),
    )
    lines = [
        "| where the import CPU goes, in shares of the reference's import (no bytecode; "
        "split by `-X importtime` self times) | " + " | ".join(columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for family in families:
        shares = [f"{ratio * fractions.get(family, 0):.2f}" for ratio, fractions in columns.values()]
        lines.append(f"| {family} | " + " | ".join(shares) + " |")
    lines.append(
        "| total (the ratio above) | "
        + " | ".join(f"**{ratio:.2f}**" for ratio, _ in columns.values())
        + " |"
    )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=SAMPLES)
    args = parser.parse_args(argv)
    python = find_python313()
    if python is None:
        sys.stderr.write("no python3.13 found: set BENCH_PYTHON313 or put python3.13 on PATH\n")
        return 2

    def progress(message: str) -> None:
        sys.stderr.write(message + "\n")

    cold = measure(python, prepare(python, progress), args.samples, progress)
    sys.stdout.write("\n".join(table_lines(cold)) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
