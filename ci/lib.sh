# Shared helpers for ci/*.sh (sourced, not run).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=${PYTHON:-python3}
export PIP_DISABLE_PIP_VERSION_CHECK=1

# Each step's line carries the wall-clock time and the seconds since the
# first script of this run began (Q6BIT_CI_T0, inherited by the sub-scripts),
# so a slow host's log shows where the time went.
export Q6BIT_CI_T0=${Q6BIT_CI_T0:-$(date +%s)}
log() { printf '\n=== [%s +%ss] %s\n' "$(date +%H:%M:%S)" "$(($(date +%s) - Q6BIT_CI_T0))" "$*"; }

# apt_install PKG...: installs the Debian packages not yet installed; runs
# apt-get update only when something is missing (safe to run twice).
apt_install() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "apt-get install ${missing[*]}"
  local sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# pip_quiet ARGS...: pip install without the noise of unreachable local indexes;
# returns pip's status (a "|| true" after the pipe used to reset PIPESTATUS, so
# a failed install passed). PIP_TARGET_PYTHON=X installs into the environment
# of interpreter X (pip --python, for a venv made --without-pip).
pip_quiet() {
  local rc=0 out
  out=$("$PY" -m pip ${PIP_TARGET_PYTHON:+--python "$PIP_TARGET_PYTHON"} install -q "$@" 2>&1) || rc=$?
  grep -v -e "^WARNING: Location" -e "^WARNING: Running pip as" <<<"$out" || true
  return "$rc"
}
