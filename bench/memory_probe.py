"""One SQS invocation in a fresh interpreter; prints its peak RSS and CPU as the last line (JSON).

    python -m bench.memory_probe EVENT_FILE

Run by ``bench.run`` under python3.13 with the layer as built on the path, like a cold Lambda.
The peak is the kernel's high-water mark of this process's own memory (``VmHWM``):
``ru_maxrss`` is reported too, but Linux carries the parent's peak into it across fork and exec,
so a probe started by a large parent would report the parent's size.

The CPU of init (the import of ``app``, which primes the function as deployed) and of the first
invocation are reported apart: what a cold start defers shows in the second.
"""

from __future__ import annotations

import json
import resource
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KIB_PER_MIB = 1024


def high_water_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


class Context:
    function_name = "salesmanago-bridge-bench"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:eu-central-1:123456789012:function:salesmanago-bridge-bench"
    function_version = "$LATEST"
    log_group_name = "/aws/lambda/salesmanago-bridge-bench"
    log_stream_name = "bench"
    aws_request_id = str(uuid.uuid4())

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 60_000


def main(argv: list[str]) -> int:
    event = json.loads(Path(argv[0]).read_text())
    sys.path.insert(0, str(ROOT / "functions" / "sqs_consumer"))
    started = time.process_time()
    import app  # the function's module, as Lambda imports it

    imported_s = time.process_time() - started
    imported = set(sys.modules)
    after_import_kib = high_water_kib()
    result = app.lambda_handler(event, Context())
    invoked_s = time.process_time() - started - imported_s
    peak_kib = high_water_kib()
    deferred = sorted({name.split(".")[0] for name in set(sys.modules) - imported})
    report = {
        "records": len(event["Records"]),
        "failed_records": len(result["batchItemFailures"]),
        "peak_rss_mb": round(peak_kib / KIB_PER_MIB, 1),
        "rss_after_import_mb": round(after_import_kib / KIB_PER_MIB, 1),
        "ru_maxrss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / KIB_PER_MIB, 1),
        "import_cpu_ms": round(imported_s * 1000, 1),
        "first_invocation_cpu_ms": round(invoked_s * 1000, 1),
        "python": sys.version.split()[0],
        "imported_during_first_invocation": deferred,
    }
    sys.stdout.write("\n" + json.dumps(report) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
