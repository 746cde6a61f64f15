#!/usr/bin/env bash
# run-spin.sh — check one SPIN model variant and judge the outcome.
#
#   model/run-spin.sh --expect hold|fail [options] [-DNAME[=VALUE]...] MODEL.pml
#
# Builds in a scratch directory (never in the source tree):
#   spin -a [-D...] MODEL.pml
#   cc -O2 -DSAFETY [--pan-cc flags] -o pan pan.c      (no -DSAFETY with --ltl)
#   ./pan -m DEPTH [--pan-arg args]                     (-a with --ltl)
# and judges pan's report:
#   --expect hold  "errors: 0", a full (not bitstate) search, not cut short
#                  by the depth limit; anything else fails.
#   --expect fail  errors > 0 and a trail written; with --expect-error RE, the
#                  first error line must also match RE (so a model that fails
#                  for another reason does not pass). The tail of the trail,
#                  replayed by spin -t, is printed.
#
# Options:
#   --expect hold|fail   required
#   --expect-error RE    (fail) extended regex the "pan:1:" line must match
#   --ltl                liveness/LTL: compile without -DSAFETY, run pan -a
#   --depth N            pan -m N (default 100000)
#   --pan-cc FLAG        extra compiler flag for pan.c (repeatable)
#   --pan-arg ARG        extra pan run-time argument, e.g. -E (repeatable)
#   --spin PATH          spin executable (default: $SPIN or spin)
#   --cc PATH            C compiler for pan.c (default: $CC, else gcc)
#   --workdir DIR        build here (emptied first, kept afterwards); default:
#                        a mktemp -d directory, removed at exit
#   --quiet              print only the summary lines
# Exit status: 0 when the outcome is the expected one, 1 when it is not,
# 2 on a usage or build error.
set -euo pipefail

die() { echo "run-spin: $*" >&2; exit 2; }

expect="" expect_error="" ltl=0 depth=100000 workdir="" quiet=0
spin="${SPIN:-spin}"
cc="${CC:-}"
defines=() pan_cc=() pan_args=()
model=""

while (($#)); do
  case "$1" in
    --expect) expect=${2:?}; shift 2 ;;
    --expect-error) expect_error=${2:?}; shift 2 ;;
    --ltl) ltl=1; shift ;;
    --depth) depth=${2:?}; shift 2 ;;
    --pan-cc) pan_cc+=("${2:?}"); shift 2 ;;
    --pan-arg) pan_args+=("${2:?}"); shift 2 ;;
    --spin) spin=${2:?}; shift 2 ;;
    --cc) cc=${2:?}; shift 2 ;;
    --workdir) workdir=${2:?}; shift 2 ;;
    --quiet) quiet=1; shift ;;
    -D*) defines+=("$1"); shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $1" ;;
    *) [[ -z "$model" ]] || die "one model at a time"; model=$1; shift ;;
  esac
done

[[ "$expect" == hold || "$expect" == fail ]] || die "--expect hold|fail is required"
[[ -n "$model" ]] || die "no model given"
[[ -f "$model" ]] || die "no such model: $model"
command -v "$spin" >/dev/null || die "spin not found ($spin); Debian: apt-get install spin"
# spin -a itself preprocesses the model with `gcc -E`.
command -v gcc >/dev/null || die "gcc not found (spin preprocesses models with gcc -E)"
[[ -n "$cc" ]] || cc=gcc
command -v "$cc" >/dev/null || die "C compiler for pan.c not found ($cc)"
model_abs=$(cd "$(dirname "$model")" && pwd)/$(basename "$model")
name=$(basename "$model")

if [[ -z "$workdir" ]]; then
  workdir=$(mktemp -d "${TMPDIR:-/tmp}/run-spin.XXXXXX")
  trap 'rm -rf "$workdir"' EXIT
else
  rm -rf "$workdir"
  mkdir -p "$workdir"
fi
cd "$workdir"
cp "$model_abs" "$name"

label="$name${defines[*]:+ ${defines[*]}}"
say() { ((quiet)) || printf '%s\n' "$*"; }

# ---- build -----------------------------------------------------------------
if ! "$spin" -a "${defines[@]}" "$name" >spin.log 2>&1; then
  cat spin.log >&2
  die "spin -a failed for $label"
fi
cflags=(-O2 -w)
((ltl)) || cflags+=(-DSAFETY)
cflags+=("${pan_cc[@]}")
if ! "$cc" "${cflags[@]}" -o pan pan.c >cc.log 2>&1; then
  cat cc.log >&2
  die "compiling pan.c failed for $label"
fi

# ---- search ------------------------------------------------------------------
run=(./pan -m"$depth")
((ltl)) && run+=(-a)
run+=("${pan_args[@]}")
set +e
"${run[@]}" >pan.out 2>&1
pan_rc=$?
set -e

summary() {
  grep -E '^pan:[0-9]+:|^pan: (elapsed|rate)|^(Full|Bit) statespace|State-vector|states, stored|states, matched|transitions|total actual memory|Warning: Search not completed|max search depth too small|^error:|^unreached in|^[[:space:]]+\([0-9]+ of [0-9]+ states\)' pan.out || true
}

errors=$(sed -n 's/.*errors: \([0-9][0-9]*\).*/\1/p' pan.out | tail -n 1)
if [[ -z "$errors" ]]; then
  cat pan.out >&2
  echo "run-spin: $label: pan did not report its result (exit $pan_rc)" >&2
  exit 1
fi

trail_tail() {
  local trail
  trail=$(ls -- *.trail 2>/dev/null | head -n 1) || true
  [[ -n "$trail" ]] || return 0
  echo "--- last steps of the counterexample (spin -t -p -g -l, from $trail):"
  "$spin" -t -p -g -l "${defines[@]}" "$name" 2>&1 | grep -v '^[[:space:]]*$' | tail -n 40
}

if [[ "$expect" == hold ]]; then
  problems=()
  ((errors == 0)) || problems+=("errors: $errors")
  grep -q '^Full statespace search' pan.out || problems+=("not a full state-space search")
  grep -q 'Search not completed' pan.out && problems+=("search not completed")
  grep -qE 'max search depth too small|depth-limit' pan.out && problems+=("depth limit $depth reached")
  grep -q 'out of memory' pan.out && problems+=("pan ran out of memory")
  if ((${#problems[@]})); then
    echo "run-spin: $label: expected to hold, but: ${problems[*]}" >&2
    summary >&2
    trail_tail >&2
    exit 1
  fi
  say "run-spin: $label: holds (exhaustive search, errors: 0)"
  ((quiet)) || summary
  exit 0
fi

# expect fail
first=$(grep -m1 -E '^pan:1:' pan.out || true)
if ((errors == 0)) || ! ls -- *.trail >/dev/null 2>&1; then
  echo "run-spin: $label: expected SPIN to find an error, but it found none" >&2
  summary >&2
  exit 1
fi
if [[ -n "$expect_error" ]] && ! grep -qE -- "$expect_error" <<<"$first"; then
  echo "run-spin: $label: SPIN found an error, but not the expected one" >&2
  echo "  expected: /$expect_error/" >&2
  echo "  found:    $first" >&2
  summary >&2
  trail_tail >&2
  exit 1
fi
say "run-spin: $label: fails as expected: ${first#pan:1: }"
if ((!quiet)); then
  summary
  trail_tail
fi
exit 0
