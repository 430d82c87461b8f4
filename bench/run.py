"""make bench: the SQS consumer's throughput, requests, CPU, memory and cold start, side by side.

    python -m bench.run [--commands 10000] [--naive-commands 1000] [--samples 7] [--skip-coldstart]

The sandbox (and moto's server, for the idempotency run) each run in their own process; the
naive baseline, the bulk runs and the CPU runs share this process, one session and one sandbox,
so every ratio compares figures measured side by side. Prints a table, writes
``bench/results.json`` and refreshes the table in ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib.util
import json
import os
import platform
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import coldstart
from bench.workload import RECORDS_PER_INVOCATION, Workload, groups, workload

# Budgets: issue 3's targets. Reported as pass/fail, never asserted.
MAX_REQUESTS_VS_LOWER_BOUND = 1.1
MIN_REQUEST_REDUCTION_VS_NAIVE = 30.0
MIN_SPEEDUP_VS_NAIVE = 40.0
MAX_CPU_US_PER_COMMAND = 100.0
MAX_COLD_IMPORT_VS_REFERENCE = 0.6
MAX_PEAK_RSS_MB = 128.0

COMMANDS = 10_000
NAIVE_COMMANDS = 1_000
NAIVE_WARMUP = 20
LATENCY_MS = 20.0
GROUP_COUNT = 3
CPU_REPEATS = 3  # the CPU figure is the median of this many runs: this machine's CPU is shared
MAX_PARALLEL_REQUESTS = "4"  # template.yaml Globals
SQS_TIMEOUT_S = 60.0  # template.yaml: SqsConsumerFunction Timeout
LOG_LEVEL = "INFO"  # template.yaml: PowertoolsLogLevel default
IDEMPOTENCY_TABLE = "bench-idempotency"
DEPLOYED_PROBE = "as deployed: idempotency on, groups in SSM, tracing on"
CALIBRATION_LOOPS = 2_000_000
PIP_INSTALL = ("-m", "pip", "install", "-q", "--disable-pip-version-check")

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
SQS_CONSUMER = ROOT / "functions" / "sqs_consumer"  # the function the memory probes run
TMP = BENCH / ".tmp" / "run"
RESULTS = BENCH / "results.json"
README = BENCH / "README.md"
TABLE_BEGIN = "<!-- bench:table:begin -->"
TABLE_END = "<!-- bench:table:end -->"


def progress(message: str) -> None:
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


# ---- processes of their own --------------------------------------------------------------------
class SandboxProcess:
    """``bench.sandbox_server`` in a child process, driven through its stdin."""

    def __init__(self, groups_file: Path) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "bench.sandbox_server", str(groups_file)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().split()
        if not line or line[0] != "ready":
            raise RuntimeError("the sandbox process did not start")
        self.url = line[1]

    def send(self, command: str) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def cpu_s(self) -> float:
        """CPU seconds the sandbox process has used so far (user + system)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.send("quit")
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def moto_server_path() -> Path | None:
    """moto's server needs Flask; without it in the venv, install it once under bench/.tmp."""
    if importlib.util.find_spec("flask") and importlib.util.find_spec("flask_cors"):
        return None
    target = BENCH / ".tmp" / "moto-server"
    if not (target / "flask_cors").exists():
        progress("installing flask and flask-cors for moto's server under bench/.tmp (once)")
        subprocess.run(  # noqa: S603 - pip of our own interpreter, PyPI only
            [sys.executable, *PIP_INSTALL, "--target", str(target), "flask", "flask-cors"],
            check=True,
            stderr=subprocess.DEVNULL,
        )
    return target


class MotoProcess:
    """moto's server standing in for DynamoDB, in a child process."""

    def __init__(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{port}"
        env = dict(os.environ)
        extra = moto_server_path()
        if extra:
            env["PYTHONPATH"] = os.pathsep.join([str(extra), env.get("PYTHONPATH", "")])
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(self.url + "/moto-api/", timeout=1):  # noqa: S310 - loopback
                    return
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.close()
                    raise RuntimeError("moto's server did not start") from None
                time.sleep(0.2)

    def create_table(self) -> None:
        import boto3

        dynamodb = boto3.client("dynamodb", endpoint_url=self.url, region_name="eu-central-1")
        dynamodb.create_table(
            TableName=IDEMPOTENCY_TABLE,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )

    def put_groups(self, configs: dict[str, Any], environ: dict[str, str]) -> None:
        """The group configs as a deployed stack keeps them: a SecureString each, named as the
        layer's settings name them for ``environ``."""
        import boto3

        from salesmanago_bridge.settings import Settings

        settings = Settings.from_env(environ)
        ssm = boto3.client("ssm", endpoint_url=self.url, region_name="eu-central-1")
        for key, config in configs.items():
            ssm.put_parameter(
                Name=settings.group_parameter_name(key),
                Value=json.dumps(config),
                Type="SecureString",
                Overwrite=True,
            )

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


@contextlib.contextmanager
def stdout_to(path: Path) -> Iterator[list[int]]:
    """Send fd 1 (Powertools' log lines and EMF blobs) to ``path``; yields [bytes written]."""
    sys.stdout.flush()
    saved = os.dup(1)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    start = os.fstat(fd).st_size
    os.dup2(fd, 1)
    written = [0]
    try:
        yield written
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        written[0] = os.fstat(fd).st_size - start
        os.close(fd)


def calibration_ms() -> float:
    """CPU time of a fixed pure-Python loop: how fast this shared machine was at that moment."""
    started = time.process_time()
    total = 0
    for n in range(CALIBRATION_LOOPS):
        total += n * n % 7
    return round((time.process_time() - started) * 1000, 1)


# ---- runs --------------------------------------------------------------------------------------
@dataclass
class Run:
    """What one run measured."""

    name: str
    commands: int
    invocations: int
    latency_ms: float
    wall_s: float
    cpu_s: float
    requests: int
    lower_bound: int | None = None
    retried_records: int = 0  # batchItemFailures
    dead_lettered: dict[str, int] = field(default_factory=dict)  # error_type -> count
    non_200: int = 0
    log_bytes: int = 0
    sandbox_cpu_s: float = 0.0  # the fake SALESmanago's own CPU during the run, for context
    calibration_ms: float = 0.0
    by_path: dict[str, int] = field(default_factory=dict)
    mix: dict[str, int] = field(default_factory=dict)

    @property
    def commands_per_s(self) -> float:
        return self.commands / self.wall_s

    @property
    def requests_per_1000(self) -> float:
        return 1000 * self.requests / self.commands

    @property
    def cpu_us_per_command(self) -> float:
        return 1e6 * self.cpu_s / self.commands

    @property
    def clean(self) -> bool:
        return not (self.retried_records or self.dead_lettered or self.non_200)

    def as_dict(self) -> dict[str, Any]:
        figures = asdict(self)
        figures.update(
            commands_per_s=round(self.commands_per_s, 1),
            requests_per_1000_commands=round(self.requests_per_1000, 2),
            cpu_us_per_command=round(self.cpu_us_per_command, 1),
            log_bytes_per_command=round(self.log_bytes / self.commands, 1),
            wall_s=round(self.wall_s, 3),
            cpu_s=round(self.cpu_s, 3),
            clean=self.clean,
        )
        if self.lower_bound:
            figures["requests_vs_lower_bound"] = round(self.requests / self.lower_bound, 3)
        return figures


class CountingSink:
    """Wraps the dispatcher's dead-letter sink to count what a run parks, by error type."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.parked: Counter[str] = Counter()

    def park(self, body: Any, reason: dict[str, Any]) -> bool:
        self.parked[str(reason.get("error_type"))] += 1
        return bool(self.inner.park(body, reason))


class Bench:
    """Drives the SQS consumer's ``lambda_handler`` (and the naive baseline) against the sandbox."""

    def __init__(self, sandbox: SandboxProcess, log_file: Path) -> None:
        from local.runner import load_handler

        self.sandbox = sandbox
        self.log_file = log_file
        self.handler = load_handler("sqs_consumer").lambda_handler

    @staticmethod
    def sink() -> CountingSink:
        from salesmanago_bridge.dispatch import get_dispatcher

        dispatcher = get_dispatcher()
        if not isinstance(dispatcher.dead_letters, CountingSink):
            dispatcher.dead_letters = CountingSink(dispatcher.dead_letters)  # type: ignore[assignment]
        return dispatcher.dead_letters  # type: ignore[return-value]

    def _invoke_all(self, load: Workload) -> int:
        from local.runner import FakeLambdaContext

        retried = 0
        for event in load.events:
            context = FakeLambdaContext(function_name="salesmanago-bridge-bench", timeout_s=SQS_TIMEOUT_S)
            retried += len(self.handler(event, context)["batchItemFailures"])
        return retried

    def _measure(self, name: str, load: Workload, latency_ms: float, work: Callable[[], int]) -> Run:
        self.sandbox.send("reset")
        sink = self.sink()
        sink.parked.clear()
        calibration = calibration_ms()
        sandbox_cpu = self.sandbox.cpu_s()
        # The run's pre-built events (all of them, where Lambda holds one) stay out of the cyclic
        # collector, whose passes would otherwise walk 20 invocations' worth of records.
        gc.freeze()
        try:
            with stdout_to(self.log_file) as written:
                wall, cpu = time.perf_counter(), time.process_time()
                retried = work()
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        finally:
            gc.unfreeze()
        sandbox_cpu = self.sandbox.cpu_s() - sandbox_cpu
        stats = self.sandbox.send("stats")
        self.sandbox.send("reset")
        return Run(
            name=name,
            commands=load.commands,
            invocations=len(load.events),
            latency_ms=latency_ms,
            wall_s=wall,
            cpu_s=cpu,
            requests=stats["requests"],
            retried_records=retried,
            dead_lettered=dict(sink.parked),
            non_200=sum(n for status, n in stats["by_status"].items() if status != "200"),
            log_bytes=written[0],
            sandbox_cpu_s=round(sandbox_cpu, 2),
            calibration_ms=calibration,
            by_path=stats["by_path"],
            mix=load.mix(),
        )

    def bulk(self, name: str, make: Callable[[], Workload], latency_ms: float) -> Run:
        """Every invocation of the workload through the handler, after one warm-up invocation."""
        self.sandbox.send(f"latency {latency_ms}")
        with stdout_to(self.log_file):
            self._invoke_all(workload(RECORDS_PER_INVOCATION, GROUP_COUNT, seed=99, tag=f"warm-{name}"))
        load = make()
        progress(f"{name}: {load.commands} commands in {len(load.events)} invocations, {latency_ms:g} ms")
        run = self._measure(name, load, latency_ms, lambda: self._invoke_all(load))
        run.lower_bound = load.lower_bound_requests()
        return run

    def naive(self, name: str, load: Workload, latency_ms: float) -> Run:
        """One SALESmanago call per command, one at a time, on the dispatcher's own session."""
        from salesmanago_bridge.dispatch import get_dispatcher

        dispatcher = get_dispatcher()
        records = [record for event in load.events for record in event["Records"]]
        self.sandbox.send(f"latency {latency_ms}")
        with stdout_to(self.log_file):
            for record in records[:NAIVE_WARMUP]:
                naive_send(dispatcher, record)
        progress(f"{name}: {len(records)} commands one call each, {latency_ms:g} ms")
        run = self._measure(
            name, load, latency_ms, lambda: sum(not naive_send(dispatcher, r) for r in records)
        )
        run.invocations = len(records)
        return run


def naive_send(dispatcher: Any, record: dict[str, Any]) -> bool:
    """What a naive consumer does with one record: validate it, then one single-endpoint call."""
    from salesmanago_bridge.commands import Action, CommandEnvelope
    from salesmanago_bridge.errors import BridgeError
    from salesmanago_bridge.mapping import contact_upsert_item, event_item, product_item
    from salesmanago_bridge.sources import from_sqs_record

    client, store = dispatcher.client, dispatcher.groups
    client.budget.set_remaining(None)
    inbound = from_sqs_record(record)
    envelope = CommandEnvelope.parse(inbound.body, action=inbound.action)
    assert envelope.action is not None
    group = store.get(envelope.group_key)
    command = envelope.to_command(
        field_map=group.routes_for(envelope.action),
        sent_at_ms=inbound.sent_at_ms,
        default_location=group.location,
    )
    action = str(command.action)
    data: Any = command.data
    try:
        if command.action is Action.CONTACT_UPSERT:
            client.call_v2(group, "contact/upsert", contact_upsert_item(data), action=action)
        elif command.action is Action.EVENT_CREATE:
            client.call_v2(group, "v2/contact/addContactExtEvent", event_item(data), action=action)
        else:
            body = {"catalogId": group.catalog_id, "products": [product_item(p) for p in data]}
            client.call_v3(group, "POST", "product/upsert", body, action=action)
    except BridgeError:
        return False
    return True


def use_settings(**env: str | None) -> None:
    """Change the bridge's environment and rebuild its cached settings and dispatcher."""
    from salesmanago_bridge.dispatch import get_dispatcher
    from salesmanago_bridge.settings import get_settings

    for key, value in env.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    get_settings.cache_clear()
    get_dispatcher.cache_clear()


def median_run(runs: list[Run]) -> dict[str, Any]:
    """The run with the median CPU per command, plus every run's figure."""
    ordered = sorted(runs, key=lambda run: run.cpu_us_per_command)
    figures = ordered[len(ordered) // 2].as_dict()
    figures["cpu_us_per_command_runs"] = [round(run.cpu_us_per_command, 1) for run in runs]
    figures["clean"] = all(run.clean for run in runs)
    return figures


# ---- memory ------------------------------------------------------------------------------------
def memory(
    python: str, dirs: coldstart.Dirs, groups_file: Path, variants: dict[str, dict[str, str | None]]
) -> dict[str, Any]:
    """Peak RSS of one 500-record invocation, each in a fresh python3.13 with the layer as built.

    A variant's ``None`` removes a variable: without ``SALESMANAGO_GROUPS_FILE`` the groups come
    from SSM, as in a deployed function."""
    load = workload(RECORDS_PER_INVOCATION, GROUP_COUNT, seed=7, tag=f"memory{time.time_ns()}")
    event_file = TMP / "memory_event.json"
    event_file.write_text(json.dumps(load.events[0]))
    figures = {}
    for label, extra in variants.items():
        env = {
            **coldstart.lambda_env(SQS_CONSUMER),
            "SALESMANAGO_GROUPS_FILE": str(groups_file),
            "SALESMANAGO_ALLOW_LOOPBACK": "true",  # the sandbox listens on 127.0.0.1
            "POWERTOOLS_TRACE_DISABLED": "true",
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(dirs.layer), str(dirs.runtime)]),
            **extra,
        }
        env = {name: value for name, value in env.items() if value is not None}
        done = subprocess.run(  # noqa: S603 - our own probe
            [python, "-m", "bench.memory_probe", str(event_file)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:  # one probe failing must not lose the whole run's figures
            figures[label] = {"error": coldstart.failure_line(done)}
            continue
        lines = done.stdout.strip().splitlines()
        probe = json.loads(lines[-1])
        # A dead letter is not a failed record (SQS deletes it): the handler's own summary tells them.
        outcomes: Counter[str] = Counter()
        for line in lines[:-1]:
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict) and record.get("message") == "invocation done":
                    outcomes.update(record.get("outcomes") or {})
        probe["outcomes"] = dict(outcomes)
        probe["clean"] = (
            probe["failed_records"] == 0
            and sum(outcomes.values()) == probe["records"]
            and all(key.endswith(":applied") for key in outcomes)
        )
        figures[label] = probe
    return figures


# ---- report ------------------------------------------------------------------------------------
def machine(python313: str | None) -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    commit = subprocess.run(
        ["git", "describe", "--always", "--dirty"],  # noqa: S607
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "uname_m": platform.machine(),
        "nproc": os.cpu_count(),
        "cpu": model,
        "python_bench": platform.python_version(),
        "python_coldstart": coldstart.python_version(python313) if python313 else None,
        "commit": commit,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []

    def add(name: str, value: float | None, limit: float, at_least: bool) -> None:
        ok = None if value is None else (value >= limit if at_least else value <= limit)
        rows.append({"target": name, "value": value, "limit": limit, "pass": ok})

    mixed, one, naive = results["mixed"], results["one_group"], results["naive"]
    add("requests / lower bound, mixed", mixed["requests_vs_lower_bound"], MAX_REQUESTS_VS_LOWER_BOUND, False)
    add(
        "requests / lower bound, one group",
        one["requests_vs_lower_bound"],
        MAX_REQUESTS_VS_LOWER_BOUND,
        False,
    )
    fewer = naive["requests_per_1000_commands"] / mixed["requests_per_1000_commands"]
    add("naive requests / ours, mixed", round(fewer, 1), MIN_REQUEST_REDUCTION_VS_NAIVE, True)
    faster = mixed["commands_per_s"] / naive["commands_per_s"]
    add("commands/s / naive, mixed at 20 ms", round(faster, 1), MIN_SPEEDUP_VS_NAIVE, True)
    cpu = results["cpu"]["off"]["cpu_us_per_command"]
    add("CPU us per command, idempotency off", cpu, MAX_CPU_US_PER_COMMAND, False)
    for name, row in (results.get("cold_start") or {}).get("handlers", {}).items():
        add(
            f"cold import / reference, {name}", row["ratio_to_reference"], MAX_COLD_IMPORT_VS_REFERENCE, False
        )
    for label, probe in (results.get("memory") or {}).items():
        peak = probe.get("peak_rss_mb")  # None when the probe failed: reported as n/a
        add(f"peak RSS MB, 500 records, {label}", peak, MAX_PEAK_RSS_MB, False)
    return rows


def table(results: dict[str, Any]) -> str:
    naive = results["naive"]
    lines = [
        "| run | commands | commands/s | x naive | requests per 1,000 | naive / ours | / lower bound "
        "| CPU us per command | sandbox CPU us per command | clean |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]

    def row(label: str, run: dict[str, Any], baseline: bool = False) -> None:
        same_latency = run["latency_ms"] == naive["latency_ms"]
        speed = (
            "" if baseline or not same_latency else f"{run['commands_per_s'] / naive['commands_per_s']:,.1f}"
        )
        fewer = (
            ""
            if baseline
            else f"{naive['requests_per_1000_commands'] / run['requests_per_1000_commands']:,.1f}"
        )
        bound = f"{run['requests_vs_lower_bound']:.3f}" if run.get("requests_vs_lower_bound") else ""
        cpu = f"{run['cpu_us_per_command']:,.0f}"
        if len(run.get("cpu_us_per_command_runs", [])) > 1:
            cpu += " (" + ", ".join(f"{v:,.0f}" for v in run["cpu_us_per_command_runs"]) + ")"
        lines.append(
            f"| {label} | {run['commands']:,} | {run['commands_per_s']:,.0f} | {speed} "
            f"| {run['requests_per_1000_commands']:.2f} | {fewer} | {bound} | {cpu} "
            f"| {1e6 * run['sandbox_cpu_s'] / run['commands']:,.0f} | {'yes' if run['clean'] else 'NO'} |"
        )

    groups_count = len(results["settings"]["groups"])
    row(f"naive: 1 call per command, {naive['latency_ms']:g} ms", naive, baseline=True)
    row(f"bulk: mixed, {groups_count} groups, {results['mixed']['latency_ms']:g} ms", results["mixed"])
    row(f"bulk: one group, {results['one_group']['latency_ms']:g} ms", results["one_group"])
    cpu = results["cpu"]
    row("CPU: mixed, 0 ms, idempotency off, INFO logs", cpu["off"])
    row("CPU: mixed, 0 ms, idempotency off, WARNING logs", cpu["off_warning"])
    if cpu.get("on"):
        row("CPU: mixed, 0 ms, idempotency on (moto server)", cpu["on"])
    lines.append("")
    memory = results.get("memory") or {}
    if memory:
        lines += [
            "| one 500-record invocation, fresh python3.13 | peak RSS MB | RSS after import MB "
            "| import CPU ms | first invocation CPU ms | all applied | loaded during the first invocation |",
            "|---|---:|---:|---:|---:|---|---|",
        ]
        for label, probe in memory.items():
            if "error" in probe:
                lines.append(f"| {label} | probe failed: {probe['error']} | | | | | |")
                continue
            lines.append(
                f"| {label} | {probe['peak_rss_mb']:.1f} | {probe['rss_after_import_mb']:.1f} "
                f"| {probe.get('import_cpu_ms', 0):,.0f} | {probe.get('first_invocation_cpu_ms', 0):,.0f} "
                f"| {'yes' if probe.get('clean') else 'NO'} "
                f"| {', '.join(probe.get('imported_during_first_invocation') or []) or '-'} |"
            )
        lines.append("")
    cold = results.get("cold_start") or {}
    if cold:
        lines += [*coldstart.table_lines(cold), ""]
    lines += ["| target | value | limit | result |", "|---|---:|---:|---|"]
    for target in results["targets"]:
        verdict = "n/a" if target["pass"] is None else ("pass" if target["pass"] else "**FAIL**")
        value = "n/a" if target["value"] is None else f"{target['value']:,}"
        lines.append(f"| {target['target']} | {value} | {target['limit']:g} | {verdict} |")
    return "\n".join(lines)


def update_readme(text: str, results: dict[str, Any]) -> None:
    content = README.read_text() if README.exists() else ""
    if TABLE_BEGIN not in content or TABLE_END not in content:
        return
    head, rest = content.split(TABLE_BEGIN, 1)
    _, tail = rest.split(TABLE_END, 1)
    info = results["machine"]
    stamp = (
        f"Measured {info['date']} at `{info['commit']}`: `uname -m` {info['uname_m']}, nproc {info['nproc']} "
        f"({info['cpu']}), bench process Python {info['python_bench']}, cold start and memory Python "
        f"{info['python_coldstart']}; load average {info['load_average_at_start'][0]:g} at the start, "
        f"{info['load_average_at_end'][0]:g} at the end (other work shared the machine). "
        f"Command: `{results['command']}`."
    )
    README.write_text(f"{head}{TABLE_BEGIN}\n{stamp}\n\n{text}\n{TABLE_END}{tail}")


# ---- main --------------------------------------------------------------------------------------
def bridge_env(groups_file: Path) -> None:
    """What the handler reads (template.yaml Globals), pointed at the sandbox; no AWS anywhere."""
    os.environ.update(
        STAGE="bench",
        SALESMANAGO_GROUPS_FILE=str(groups_file),
        SALESMANAGO_ALLOW_LOOPBACK="true",  # the sandbox listens on 127.0.0.1
        MAX_PARALLEL_REQUESTS=MAX_PARALLEL_REQUESTS,
        POWERTOOLS_SERVICE_NAME="salesmanago-bridge",
        POWERTOOLS_METRICS_NAMESPACE="SalesmanagoBridge",
        POWERTOOLS_LOG_LEVEL=LOG_LEVEL,
        POWERTOOLS_TRACE_DISABLED="true",
        POWERTOOLS_LOGGER_LOG_EVENT="false",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",  # noqa: S106 - moto's fake credentials
        AWS_DEFAULT_REGION="eu-central-1",
        AWS_REGION="eu-central-1",
    )
    for key in ("DEAD_LETTER_QUEUE_URL", "IDEMPOTENCY_TABLE_NAME", "AWS_ENDPOINT_URL"):
        os.environ.pop(key, None)


def throughput(bench: Bench, commands: int, naive_commands: int) -> dict[str, Any]:
    """Naive baseline, then the bulk runs at 20 ms, then the CPU runs at 0 ms."""
    results: dict[str, Any] = {}
    first = workload(naive_commands, GROUP_COUNT, seed=1, tag="mixed")
    results["naive"] = bench.naive("naive", first, LATENCY_MS).as_dict()
    del first
    results["mixed"] = bench.bulk(
        "mixed", lambda: workload(commands, GROUP_COUNT, seed=1, tag="mixed"), LATENCY_MS
    ).as_dict()
    results["one_group"] = bench.bulk(
        "one_group", lambda: workload(commands, 1, seed=2, tag="onegroup"), LATENCY_MS
    ).as_dict()
    cpu: dict[str, Any] = {}
    runs = [
        bench.bulk(f"cpu_off_{n}", lambda n=n: workload(commands, GROUP_COUNT, seed=3 + n, tag=f"cpu{n}"), 0)
        for n in range(CPU_REPEATS)
    ]
    cpu["off"] = median_run(runs)
    from salesmanago_bridge.observability import logger

    logger.setLevel("WARNING")
    try:
        cpu["off_warning"] = bench.bulk(
            "cpu_off_warning", lambda: workload(commands, GROUP_COUNT, seed=9, tag="cpuw"), 0
        ).as_dict()
    finally:
        logger.setLevel(LOG_LEVEL)
    results["cpu"] = cpu
    return results


def idempotency_on(bench: Bench, commands: int, moto: MotoProcess) -> dict[str, Any]:
    moto.create_table()
    use_settings(IDEMPOTENCY_TABLE_NAME=IDEMPOTENCY_TABLE, AWS_ENDPOINT_URL=moto.url)
    try:
        run = bench.bulk("cpu_on", lambda: workload(commands, GROUP_COUNT, seed=10, tag="cpuidem"), 0)
    finally:
        use_settings(IDEMPOTENCY_TABLE_NAME=None, AWS_ENDPOINT_URL=None)
    return run.as_dict()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--commands", type=int, default=COMMANDS)
    parser.add_argument("--naive-commands", type=int, default=NAIVE_COMMANDS)
    parser.add_argument("--samples", type=int, default=coldstart.SAMPLES, help="cold-start samples")
    parser.add_argument("--skip-coldstart", action="store_true")
    parser.add_argument("--no-write", action="store_true", help="print only; leave results.json and README")
    args = parser.parse_args(argv)

    TMP.mkdir(parents=True, exist_ok=True)
    groups_file = TMP / "groups.json"
    groups_file.write_text(json.dumps(groups(GROUP_COUNT, "http://127.0.0.1:1")))  # accounts only
    log_file = TMP / "handler-stdout.log"
    log_file.write_text("")
    python313 = coldstart.find_python313()
    sandbox = SandboxProcess(groups_file)
    moto: MotoProcess | None = None
    try:
        groups_file.write_text(json.dumps(groups(GROUP_COUNT, sandbox.url)))
        bridge_env(groups_file)
        bench = Bench(sandbox, log_file)
        results: dict[str, Any] = {
            "command": "make bench",
            "machine": machine(python313),
            "settings": {
                "commands": args.commands,
                "naive_commands": args.naive_commands,
                "records_per_invocation": RECORDS_PER_INVOCATION,
                "latency_ms": LATENCY_MS,
                "groups": list(groups(GROUP_COUNT, "")),
                "max_parallel_requests": int(MAX_PARALLEL_REQUESTS),
                "log_level": LOG_LEVEL,
                "tracing": "POWERTOOLS_TRACE_DISABLED=true in the throughput, CPU and memory runs",
                "cpu_repeats": CPU_REPEATS,
            },
        }
        results.update(throughput(bench, args.commands, args.naive_commands))
        try:
            moto = MotoProcess()
            results["cpu"]["on"] = idempotency_on(bench, args.commands, moto)
        except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
            results["cpu"]["on_skipped"] = f"{type(exc).__name__}: {exc}"
            progress(f"idempotency run skipped: {exc}")
        if python313:
            dirs = coldstart.prepare(python313, progress)
            sandbox.send("latency 0")
            progress(
                "memory: one 500-record invocation in a fresh python3.13 (idempotency off, on, as deployed)"
            )
            probes: dict[str, dict[str, str | None]] = {"idempotency off": {"IDEMPOTENCY_TABLE_NAME": ""}}
            if moto is not None and "on" in results["cpu"]:
                probes["idempotency on"] = {
                    "IDEMPOTENCY_TABLE_NAME": IDEMPOTENCY_TABLE,
                    "AWS_ENDPOINT_URL": moto.url,
                }
                # As deployed: tracing on, and the first invocation reads each group's SecureString.
                try:
                    moto.put_groups(
                        json.loads(groups_file.read_text()),
                        coldstart.lambda_env(SQS_CONSUMER),
                    )
                    probes[DEPLOYED_PROBE] = {
                        "IDEMPOTENCY_TABLE_NAME": IDEMPOTENCY_TABLE,
                        "AWS_ENDPOINT_URL": moto.url,
                        "SALESMANAGO_GROUPS_FILE": None,
                        "POWERTOOLS_TRACE_DISABLED": "false",
                    }
                except Exception as exc:  # a skipped row, not a lost run
                    progress(f"the probe as deployed skipped: {type(exc).__name__}: {exc}")
            results["memory"] = memory(python313, dirs, groups_file, probes)
            if not args.skip_coldstart:
                results["cold_start"] = coldstart.measure(python313, dirs, args.samples, progress)
        else:
            progress("no python3.13 found (set BENCH_PYTHON313): memory and cold start skipped")
        results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
        results["targets"] = targets(results)
    finally:
        sandbox.close()
        if moto is not None:
            moto.close()

    text = table(results)
    sys.stdout.write(text + "\n")
    if not args.no_write:
        RESULTS.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
        update_readme(text, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
