#!/usr/bin/env bash
# A short, bounded fuzz campaign (about 90 s): the checkpoint reader under
# atheris (coverage-guided, from the seed corpus of tests/fuzz/corpus/reader;
# what it finds is kept in a temporary folder, never in the repo) and the ops
# against the reference under hypothesis (tests/fuzz/test_ops_property.py).
# A crash leaves its input in $FUZZ_OUT (printed); replay it with
#   python tests/fuzz/fuzz_reader.py <file>
# Longer: FUZZ_SECONDS=3600 HYPOTHESIS_PROFILE=long bash ci/fuzz.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_OUT=${FUZZ_OUT:-$(mktemp -d -t q6bit-fuzz-XXXXXX)}
mkdir -p "$FUZZ_OUT/corpus"
log "fuzz: checkpoint reader, atheris, ${FUZZ_SECONDS} s (new inputs and crashes in $FUZZ_OUT)"
rc=0
(cd "$REPO" && "$PY" tests/fuzz/fuzz_reader.py "$FUZZ_OUT/corpus" tests/fuzz/corpus/reader \
  -dict=tests/fuzz/reader.dict -max_total_time="$FUZZ_SECONDS" -timeout=30 -rss_limit_mb=4096 \
  -artifact_prefix="$FUZZ_OUT/" -print_final_stats=1) >"$FUZZ_OUT/atheris.log" 2>&1 || rc=$?
if [ "$rc" -ne 0 ]; then
  tail -n 60 "$FUZZ_OUT/atheris.log"
  echo "fuzz: the reader fuzzer failed (exit $rc); crash input(s): $(ls "$FUZZ_OUT"/crash-* "$FUZZ_OUT"/timeout-* "$FUZZ_OUT"/oom-* 2>/dev/null)" >&2
  exit "$rc"
fi
grep -E "^(Done|stat::number_of_executed_units|stat::peak_rss_mb)|DONE" "$FUZZ_OUT/atheris.log"
log "fuzz: ops vs the reference, hypothesis (profile ${HYPOTHESIS_PROFILE:-ci})"
(cd "$REPO" && "$PY" -m pytest -q -p no:cacheprovider tests/fuzz)
