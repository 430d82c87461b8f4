"""Cold start as a user feels it: every function as deployed, before and after priming.

    python -m bench.deployed [--samples 3]      (also part of ``make bench``)

Each function runs in a fresh python3.13 with the layer as built (bytecode, as the layer's
Makefile ships it) and the runtime's boto3 beside it, its environment as deployed: idempotency on
(DynamoDB on moto's server), the groups and the API key index in SSM (moto's server), tracing on
(segments go to a UDP port nobody reads), against the SALESmanago sandbox in its own process.
``bench/deployed_probe.py`` measures import, priming (init = both), the after-restore hooks, the
first invocation and later invocations of the same request with the Parameters cache warm and
expired. Samples alternate priming off and on, so the machine's drift falls on both alike; the
figures are medians, with their spread (min-max) over the samples.

Targets (reported, never asserted), each a ratio of CPU times in the same run, taken per sample
and reported as the median of the samples' ratios (and their spread): the first invocation after
init at most 1.5 x a later one with the cache expired (same process), for every function; for a
function without SnapStart (the consumers, by default), init + first invocation at most 1.1 x what
it was without priming (the unprimed process run just before).

``--profile DIR``: one sample per function, primed, with the first invocation and each later one
with the cache expired profiled (cProfile on process CPU time, ``DIR/<function>-primed-*.prof``)
and the modules each loaded listed (``*.modules``): what the first still does that a later one
does not.
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
FIGURES = ("import_cpu_ms", "prime_cpu_ms", "init_cpu_ms", "init_wall_ms", "restore_hooks_cpu_ms",
           "first_cpu_ms", "first_wall_ms", "warm_cpu_ms", "expired_cpu_ms")  # fmt: skip
SPREAD = ("init_cpu_ms", "init_wall_ms", "first_cpu_ms", "expired_cpu_ms")  # reported with min-max


def environment(
    function: str, dirs: coldstart.Dirs, moto_url: str, primed: bool, profile_dir: Path | None = None
) -> dict[str, str]:
    return {
        **coldstart.lambda_env(ROOT / "functions" / function),
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(dirs.layer_pyc), str(dirs.runtime)]),
        "AWS_ENDPOINT_URL": moto_url,
        "IDEMPOTENCY_TABLE_NAME": "bench-idempotency",
        "POWERTOOLS_TRACE_DISABLED": "false",
        "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
        "BRIDGE_PRIMING": "true" if primed else "false",
        "SALESMANAGO_ALLOW_LOOPBACK": "true",  # the bench's tenants name the sandbox on loopback
        **({"BENCH_PROFILE_DIR": str(profile_dir)} if profile_dir else {}),
    }


def probe(
    python: str,
    function: str,
    dirs: coldstart.Dirs,
    moto_url: str,
    primed: bool,
    profile_dir: Path | None = None,
) -> dict[str, Any]:
    done = subprocess.run(  # noqa: S603 - our own probe
        [python, "-m", "bench.deployed_probe", function, GROUP_KEY, API_KEY_ID],
        cwd=ROOT,
        env=environment(function, dirs, moto_url, primed, profile_dir),
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
    """Medians (and spread) per function, priming off and on; targets from the samples' ratios."""
    runs: dict[tuple[str, bool], list[dict[str, Any] | None]] = {}
    errors: dict[str, str] = {}
    for sample in range(samples):
        progress(f"deployed cold start: sample {sample + 1} of {samples}")
        for function in FUNCTIONS:
            for primed in (False, True):
                result: dict[str, Any] | None = probe(python, function, dirs, moto_url, primed)
                if result is not None and "error" in result:
                    errors[f"{function} {'primed' if primed else 'unprimed'}"] = result["error"]
                    result = None
                runs.setdefault((function, primed), []).append(result)
    figures: dict[str, Any] = {}
    for function in FUNCTIONS:
        for primed in (False, True):
            found = [r for r in runs.get((function, primed), []) if r is not None]
            if not found:
                continue
            row: dict[str, Any] = {
                name: round(statistics.median(r[name] for r in found), 1) for name in FIGURES
            }
            row["spread"] = {
                name: [min(r[name] for r in found), max(r[name] for r in found)] for name in SPREAD
            }
            row["samples"] = len(found)
            row["all_applied"] = all(r["all_applied"] for r in found)
            row["snapstart"] = function in SNAPSTART_BY_DEFAULT
            figures.setdefault(function, {})["primed" if primed else "unprimed"] = row
    return {"functions": figures, "errors": errors, "targets": targets(runs)}


def targets(runs: dict[tuple[str, bool], list[dict[str, Any] | None]]) -> list[dict[str, Any]]:
    """Each target's ratio per sample (same process; or the unprimed and primed processes of the
    same sample, run one after the other), as the median of the samples and their spread."""
    found = []
    for function in FUNCTIONS:
        primed = runs.get((function, True), [])
        unprimed = runs.get((function, False), [])
        ratios = [r["first_cpu_ms"] / r["expired_cpu_ms"] for r in primed if r and r["expired_cpu_ms"]]
        if ratios:
            found.append(_target(f"first invocation / later with cache expired, {function}", ratios,
                                 MAX_FIRST_VS_EXPIRED))  # fmt: skip
        if function in SNAPSTART_BY_DEFAULT:
            continue
        growth = [
            (after["init_cpu_ms"] + after["first_cpu_ms"]) / (before["init_cpu_ms"] + before["first_cpu_ms"])
            for before, after in zip(unprimed, primed, strict=False)
            if before and after
        ]
        if growth:
            found.append(_target(f"init + first, primed / unprimed, {function}", growth, MAX_PRIMING_GROWTH))
    return found


def _target(name: str, ratios: list[float], limit: float) -> dict[str, Any]:
    value = statistics.median(ratios)
    spread = [round(min(ratios), 2), round(max(ratios), 2)]
    return {
        "target": name,
        "value": round(value, 2),
        "spread": spread,
        "limit": limit,
        "pass": value <= limit,
    }


def table_lines(result: dict[str, Any]) -> list[str]:
    lines = [
        "| function as deployed (idempotency on, groups in SSM, tracing on), CPU ms, median (min-max) "
        "| priming | import | priming | init | init, wall ms | restore hooks | first invocation "
        "| later, cache warm | later, cache expired | first / expired | init + first "
        "| init + first, wall ms | all applied |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
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
                f"| {row['prime_cpu_ms']:,.0f} | {_spread(row, 'init_cpu_ms')} "
                f"| {_spread(row, 'init_wall_ms')} "
                f"| {hooks} | {_spread(row, 'first_cpu_ms', 1)} | {row['warm_cpu_ms']:,.1f} "
                f"| {_spread(row, 'expired_cpu_ms', 1)} | {ratio:.2f} "
                f"| {row['init_cpu_ms'] + row['first_cpu_ms']:,.0f} "
                f"| {row['init_wall_ms'] + row['first_wall_ms']:,.0f} "
                f"| {'yes' if row['all_applied'] else '**NO**'} |"
            )
    for name, error in result.get("errors", {}).items():
        lines.append(f"| {name} | failed: {error} |")
    return lines


def _spread(row: dict[str, Any], name: str, digits: int = 0) -> str:
    low, high = row.get("spread", {}).get(name, (row[name], row[name]))
    return f"{row[name]:,.{digits}f} ({low:,.{digits}f}-{high:,.{digits}f})"


def main(argv: list[str] | None = None) -> int:
    from bench.run import IDEMPOTENCY_TABLE, MotoProcess, SandboxProcess, progress
    from bench.workload import groups

    samples, python, profile_dir = _arguments(argv)
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
        if profile_dir is not None:
            return profile(python, dirs, moto.url, profile_dir)
        result = measure(python, dirs, moto.url, samples, progress)
    finally:
        sandbox.close()
        moto.close()
    (TMP / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    sys.stdout.write("\n".join([*table_lines(result), "", *target_lines(result["targets"])]) + "\n")
    return 0


def target_lines(found: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| target (per sample, same run) | median | min-max | limit | result |",
        "|---|---:|---:|---:|---|",
    ]
    for target in found:
        verdict = "pass" if target["pass"] else "**FAIL**"
        low, high = target["spread"]
        lines.append(
            f"| {target['target']} | {target['value']} | {low}-{high} | {target['limit']} | {verdict} |"
        )
    return lines


def _arguments(argv: list[str] | None) -> tuple[int, str | None, Path | None]:
    args = list(sys.argv[1:] if argv is None else argv)
    profile_dir = None
    if "--profile" in args:
        at = args.index("--profile")
        profile_dir = Path(args[at + 1]).resolve()
        del args[at : at + 2]
    samples, python = coldstart.samples_and_python(__doc__, SAMPLES, args)
    return samples, python, profile_dir


def profile(python: str, dirs: coldstart.Dirs, moto_url: str, profile_dir: Path) -> int:
    """One primed sample per function, its first and expired invocations profiled into ``profile_dir``."""
    profile_dir.mkdir(parents=True, exist_ok=True)
    for function in FUNCTIONS:
        result = probe(python, function, dirs, moto_url, True, profile_dir)
        figures = {name: result.get(name) for name in ("init_cpu_ms", "first_cpu_ms", "expired_cpu_ms")}
        sys.stdout.write(f"{function}: {result.get('error') or figures}\n")
    sys.stdout.write(f"profiles and module lists in {profile_dir}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
