"""Cold start as a user feels it: every function as deployed, before and after priming.

    python -m bench.deployed [--samples 3]      (also part of ``make bench``)

Each function runs in a fresh python3.13 with the layer as built (bytecode, as the layer's
Makefile ships it) and the runtime's boto3 beside it, its environment as deployed: idempotency on
(DynamoDB on moto's server), the groups and the API key index in SSM (moto's server), tracing on
(segments go to a UDP port nobody reads), against the SALESmanago sandbox in its own process.
``bench/deployed_probe.py`` measures import, priming (init = both), the after-restore hooks, the
first invocation and later invocations of the same request with the Parameters cache warm and
expired. Samples alternate priming off and on, so the machine's drift falls on both alike; the
figures are medians.

Targets (reported, never asserted): the first invocation after init at most 1.5 x a later one with
the cache expired, for every function; for a function without SnapStart (the consumers, by
default), init + first invocation at most 1.1 x what it was without priming.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench import coldstart

ROOT = Path(__file__).resolve().parent.parent
TMP = ROOT / "bench" / ".tmp" / "deployed"
FUNCTIONS = ("api", "sqs_consumer", "sns_consumer", "eventbridge_consumer")
SNAPSTART_BY_DEFAULT = {"api"}  # samconfig.toml's prod: ApiSnapStart=true
SAMPLES = 3
GROUP_KEY = "bench-0"
API_KEY_ID = "bench-key-id"
MAX_FIRST_VS_EXPIRED = 1.5
MAX_PRIMING_GROWTH = 1.10
FIGURES = ("import_cpu_ms", "prime_cpu_ms", "init_cpu_ms", "restore_hooks_cpu_ms", "first_cpu_ms",
           "warm_cpu_ms", "expired_cpu_ms")  # fmt: skip


def environment(function: str, dirs: coldstart.Dirs, moto_url: str, primed: bool) -> dict[str, str]:
    return {
        **coldstart.lambda_env(ROOT / "functions" / function),
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(dirs.layer_pyc), str(dirs.runtime)]),
        "AWS_ENDPOINT_URL": moto_url,
        "IDEMPOTENCY_TABLE_NAME": "bench-idempotency",
        "POWERTOOLS_TRACE_DISABLED": "false",
        "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
        "BRIDGE_PRIMING": "true" if primed else "false",
        "SALESMANAGO_ALLOW_LOOPBACK": "true",  # the bench's tenants name the sandbox on loopback
    }


def probe(python: str, function: str, dirs: coldstart.Dirs, moto_url: str, primed: bool) -> dict[str, Any]:
    done = subprocess.run(  # noqa: S603 - our own probe
        [python, "-m", "bench.deployed_probe", function, GROUP_KEY, API_KEY_ID],
        cwd=ROOT,
        env=environment(function, dirs, moto_url, primed),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return {"error": coldstart.failure_line(done)}
    return json.loads(done.stdout.strip().splitlines()[-1])


def put_tenant(moto_url: str, configs: dict[str, Any]) -> None:
    """The groups (SecureStrings naming the bench's API key) and the key's index entry (a String)."""
    import boto3

    from salesmanago_bridge.settings import Settings

    settings = Settings.from_env(coldstart.lambda_env(ROOT))
    ssm = boto3.client("ssm", endpoint_url=moto_url, region_name="eu-central-1")
    for key, config in configs.items():
        value = json.dumps({**config, "api_key_ids": [API_KEY_ID]})
        ssm.put_parameter(
            Name=settings.group_parameter_name(key), Value=value, Type="SecureString", Overwrite=True
        )
    ssm.put_parameter(
        Name=settings.api_key_parameter_name(API_KEY_ID),
        Value=json.dumps({"group_keys": sorted(configs)}),
        Type="String",
        Overwrite=True,
    )


def measure(python: str, dirs: coldstart.Dirs, moto_url: str, samples: int, progress: Any) -> dict[str, Any]:
    """Medians per function, priming off and on; targets computed from them."""
    runs: dict[tuple[str, bool], list[dict[str, Any]]] = {}
    errors: dict[str, str] = {}
    for sample in range(samples):
        progress(f"deployed cold start: sample {sample + 1} of {samples}")
        for function in FUNCTIONS:
            for primed in (False, True):
                result = probe(python, function, dirs, moto_url, primed)
                if "error" in result:
                    errors[f"{function} {'primed' if primed else 'unprimed'}"] = result["error"]
                    continue
                runs.setdefault((function, primed), []).append(result)
    figures: dict[str, Any] = {}
    for function in FUNCTIONS:
        for primed in (False, True):
            found = runs.get((function, primed), [])
            if not found:
                continue
            row = {name: round(statistics.median(r[name] for r in found), 1) for name in FIGURES}
            row["samples"] = len(found)
            row["all_applied"] = all(r["all_applied"] for r in found)
            row["snapstart"] = function in SNAPSTART_BY_DEFAULT
            figures.setdefault(function, {})["primed" if primed else "unprimed"] = row
    return {"functions": figures, "errors": errors, "targets": targets(figures)}


def targets(figures: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for function, rows in figures.items():
        primed, unprimed = rows.get("primed"), rows.get("unprimed")
        if primed and primed["expired_cpu_ms"]:
            ratio = primed["first_cpu_ms"] / primed["expired_cpu_ms"]
            found.append(_target(f"first invocation / later with cache expired, {function}", ratio,
                                 MAX_FIRST_VS_EXPIRED))  # fmt: skip
        if primed and unprimed and function not in SNAPSTART_BY_DEFAULT:
            before = unprimed["init_cpu_ms"] + unprimed["first_cpu_ms"]
            after = primed["init_cpu_ms"] + primed["first_cpu_ms"]
            found.append(_target(f"init + first, primed / unprimed, {function}", after / before,
                                 MAX_PRIMING_GROWTH))  # fmt: skip
    return found


def _target(name: str, value: float, limit: float) -> dict[str, Any]:
    return {"target": name, "value": round(value, 2), "limit": limit, "pass": value <= limit}


def table_lines(result: dict[str, Any]) -> list[str]:
    lines = [
        "| function as deployed (idempotency on, groups in SSM, tracing on), CPU ms, median | priming "
        "| import | priming | init | restore hooks | first invocation | later, cache warm "
        "| later, cache expired | first / expired | init + first | all applied |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for function, rows in result["functions"].items():
        for label in ("unprimed", "primed"):
            row = rows.get(label)
            if row is None:
                continue
            name = function + (" (SnapStart in prod)" if row["snapstart"] else "")
            ratio = row["first_cpu_ms"] / row["expired_cpu_ms"] if row["expired_cpu_ms"] else float("nan")
            hooks = f"{row['restore_hooks_cpu_ms']:.1f}" if label == "primed" and row["snapstart"] else "-"
            lines.append(
                f"| {name} | {'on' if label == 'primed' else 'off'} | {row['import_cpu_ms']:,.0f} "
                f"| {row['prime_cpu_ms']:,.0f} | {row['init_cpu_ms']:,.0f} | {hooks} "
                f"| {row['first_cpu_ms']:,.0f} | {row['warm_cpu_ms']:,.0f} | {row['expired_cpu_ms']:,.0f} "
                f"| {ratio:.2f} | {row['init_cpu_ms'] + row['first_cpu_ms']:,.0f} "
                f"| {'yes' if row['all_applied'] else '**NO**'} |"
            )
    for name, error in result.get("errors", {}).items():
        lines.append(f"| {name} | failed: {error} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    from bench.run import IDEMPOTENCY_TABLE, MotoProcess, SandboxProcess, progress
    from bench.workload import groups

    samples, python = coldstart.samples_and_python(__doc__, SAMPLES, argv)
    if python is None:
        return 2
    assert IDEMPOTENCY_TABLE == "bench-idempotency"
    TMP.mkdir(parents=True, exist_ok=True)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):  # moto's server takes any
        os.environ.setdefault(name, "testing")
    groups_file = TMP / "groups.json"
    groups_file.write_text(json.dumps(groups(1, "http://127.0.0.1:1")))
    sandbox = SandboxProcess(groups_file)
    moto = MotoProcess()
    try:
        moto.create_table()
        put_tenant(moto.url, groups(1, sandbox.url))
        dirs = coldstart.prepare(python, progress)
        result = measure(python, dirs, moto.url, samples, progress)
    finally:
        sandbox.close()
        moto.close()
    (TMP / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    sys.stdout.write("\n".join([*table_lines(result), "", *target_lines(result["targets"])]) + "\n")
    return 0


def target_lines(found: list[dict[str, Any]]) -> list[str]:
    lines = ["| target | value | limit | result |", "|---|---:|---:|---|"]
    for target in found:
        verdict = "pass" if target["pass"] else "**FAIL**"
        lines.append(f"| {target['target']} | {target['value']} | {target['limit']} | {verdict} |")
    return lines


if __name__ == "__main__":
    raise SystemExit(main())
