# Sourced before every shell block the documentation test runs (test/docs/examples.test.ts).
# A block runs as the reader would run it, with these differences, each for a reason:
#  - curl fails on an HTTP error, so an example that stopped working fails the test;
#  - a command that runs until Ctrl-C runs in the background (its own process group, as in a
#    terminal) until it prints its ready line; when the block ends it gets Ctrl-C and must stop.
set -eo pipefail
set -m
trap 'exit 143' TERM
trap 'exit 130' INT

curl() { command curl --fail-with-body --silent --show-error --max-time 30 "$@"; }

__doc_pids=()
__doc_names=()
__doc_logs=()

# __doc_bg READY COMMAND…: start COMMAND in the background and wait until a line of its stdout
# matches the extended regex READY (DOC_TEST_READY_SECONDS at most).
__doc_bg() {
  local ready="$1"
  shift
  local n=${#__doc_pids[@]}
  local log="$DOC_TEST_TMP/background-$$-$n"
  "$@" >"$log.out" 2>"$log.err" &
  local pid=$!
  __doc_pids+=("$pid")
  __doc_names+=("$*")
  __doc_logs+=("$log")
  local tenths=0 code
  until grep -Eq -- "$ready" "$log.out"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      code=0
      wait "$pid" || code=$?
      echo "doc-test: '$*' ended (exit $code) before printing a line matching /$ready/:" >&2
      cat "$log.out" "$log.err" >&2
      return 1
    fi
    if ((tenths >= DOC_TEST_READY_SECONDS * 10)); then
      echo "doc-test: '$*' printed no line matching /$ready/ within ${DOC_TEST_READY_SECONDS} s:" >&2
      cat "$log.out" "$log.err" >&2
      return 1
    fi
    sleep 0.1
    tenths=$((tenths + 1))
  done
  echo "doc-test: running until Ctrl-C: $*"
  sed 's/^/  | /' "$log.out"
}

# At the end of the block (or when it fails): Ctrl-C to each background command, last first. Each
# must stop within 30 s with 0, or 130 where npm stands in front of it (npm exits 130 on SIGINT).
__doc_stop() {
  local status=$? i pid code tenths
  for ((i = ${#__doc_pids[@]} - 1; i >= 0; i--)); do
    pid=${__doc_pids[$i]}
    kill -INT -- "-$pid" 2>/dev/null || true
    tenths=0
    while kill -0 "$pid" 2>/dev/null && ((tenths < 300)); do
      sleep 0.1
      tenths=$((tenths + 1))
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "doc-test: '${__doc_names[$i]}' did not stop within 30 s of Ctrl-C" >&2
      kill -KILL -- "-$pid" 2>/dev/null || true
      status=1
      continue
    fi
    code=0
    wait "$pid" 2>/dev/null || code=$?
    echo "doc-test: stopped with Ctrl-C (exit $code): ${__doc_names[$i]}"
    if ((code != 0 && code != 130)); then
      echo "doc-test: '${__doc_names[$i]}' exited $code after Ctrl-C:" >&2
      cat "${__doc_logs[$i]}.out" "${__doc_logs[$i]}.err" >&2
      status=1
    fi
  done
  exit "$status"
}
trap __doc_stop EXIT
