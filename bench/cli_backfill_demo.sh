#!/usr/bin/env bash
# The operator's command line end to end, on moto's server (AWS) and the sandbox (SALESmanago):
# tenants, a 50,000-contact backfill (interrupted, then resumed), a day of live traffic through the
# real SQS consumer, the dead letters it leaves, a fix, and a filtered redrive.
#
#   bench/cli_backfill_demo.sh [COUNT]        or: make cli-demo
#
# Not a test: a transcript for people. Needs the project's .venv (make dev).
set -euo pipefail
cd "$(dirname "$0")/.."

COUNT=${1:-50000}
MOTO_PORT=${MOTO_PORT:-5055}
SANDBOX_PORT=${SANDBOX_PORT:-8095}
WORK=bench/.tmp/cli-demo
PY=.venv/bin/python
rm -rf "$WORK" && mkdir -p "$WORK"

# Every AWS call goes to moto's server; boto3 honours AWS_ENDPOINT_URL.
export AWS_ENDPOINT_URL="http://127.0.0.1:$MOTO_PORT" AWS_DEFAULT_REGION=eu-central-1
export AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo PYTHONUNBUFFERED=1
export SALESMANAGO_ALLOW_LOOPBACK=true  # the sandbox listens on 127.0.0.1
unset AWS_PROFILE AWS_SESSION_TOKEN BRIDGE_STACK STAGE

bridge() { .venv/bin/bridge "$@"; }
run() {  # print the command as typed, run it, show a non-zero exit code
  echo
  echo "\$ $*"
  "$@" 2>&1 || echo "[exit $?]"
}
note() { echo; echo "# $*"; }

"$PY" -m bench.cli_backfill_env serve --moto-port "$MOTO_PORT" --sandbox-port "$SANDBOX_PORT" \
  >"$WORK/serve.log" 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true' EXIT
for _ in $(seq 300); do grep -q "sandbox on" "$WORK/serve.log" 2>/dev/null && break; sleep 0.2; done
grep -q "sandbox on" "$WORK/serve.log" || { cat "$WORK/serve.log"; exit 1; }

note "moto's server on :$MOTO_PORT and the SALESmanago sandbox on :$SANDBOX_PORT; a stack with the template's outputs"
"$PY" -m bench.cli_backfill_env stack
"$PY" -m bench.cli_backfill_env group-files "$WORK" --sandbox-url "http://127.0.0.1:$SANDBOX_PORT"

note "tenants: outlet's secret was rotated in SALESmanago, but this is last month's file"
run bridge groups put demo-shop --file "$WORK/demo-shop.json" --stage demo
run bridge groups put outlet --file "$WORK/outlet.stale.json" --stage demo
run bridge groups list --stage demo

note "the history: $COUNT contacts"
"$PY" -m bench.cli_backfill_env generate "$WORK/history.jsonl" "$COUNT"
run bridge validate "$WORK/history.jsonl"

note "the backfill (stack salesmanago-bridge-demo from --stage); stopped half-way, as a closed laptop would"
echo
echo "\$ bridge send $WORK/history.jsonl --stage demo"
.venv/bin/bridge send "$WORK/history.jsonl" --stage demo >"$WORK/send.out" 2>&1 &
SEND=$!
settled() {  # the line before which every batch is settled, 0 before the first save
  local line
  line=$(sed -n 's/.*"next_line": \([0-9]*\).*/\1/p' "$WORK/history.send-state.json" 2>/dev/null || true)
  echo "${line:-0}"
}
while kill -0 "$SEND" 2>/dev/null && [ "$(settled)" -lt $((COUNT / 5)) ]; do
  sleep 0.1
done
kill -TERM "$SEND" 2>/dev/null || true
wait "$SEND" || echo "[exit $?]" >>"$WORK/send.out"
cat "$WORK/send.out"
run bridge send "$WORK/history.jsonl" --stage demo
run bridge send "$WORK/history.jsonl" --stage demo --resume

note "a day of live traffic to the commands queue"
"$PY" -m bench.cli_backfill_env live "$WORK/live.jsonl"
run bridge validate "$WORK/live.jsonl"
run bridge send "$WORK/live.jsonl" --stage demo --to queue

note "the SQS consumer (functions/sqs_consumer, in-process) drains the commands queue"
"$PY" -m bench.cli_backfill_env consume CommandsQueueUrl
note "meanwhile Lambda and EventBridge parked two failures of their own"
"$PY" -m bench.cli_backfill_env aws-failures

run bridge dlq summary --stage demo
run bridge dlq show --stage demo --limit 2
run bridge dlq show --stage demo --error-type eventbridge:SDK_CLIENT_ERROR

note "why auth? check the tenant, fix it, check again"
run bridge groups check outlet --stage demo
run bridge groups put outlet --file "$WORK/outlet.json" --stage demo --overwrite
run bridge groups check outlet --stage demo

note "replay only the auth failures; erased contacts stay erased"
run bridge dlq redrive --stage demo --error-type auth --dry-run
run bridge dlq redrive --stage demo --error-type auth
"$PY" -m bench.cli_backfill_env consume CommandsQueueUrl
run bridge dlq summary --stage demo
