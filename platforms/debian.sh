#!/usr/bin/env bash
# The README's two commands on a fresh Debian: platforms/debian.sh [SUITE], trixie (Debian 13, the base of
# today's Raspberry Pi OS: Python 3.13, where pip takes PyAV 19) unless told otherwise (bookworm: Debian 12).
# A minimal system made with debootstrap, with what a fresh Pi OS has and castd's README assumes (python3,
# make), this repository copied in (as a fresh clone has it), then inside it, as root:
#   make run    until the demo streams (a finished TS segment fetched from the stream URL), then Ctrl-C,
#               and nothing it started may be left running;
#   make test   the whole suite (it installs what it needs itself: apt packages, npm packages, the venv);
#               the frames it saves are copied to artifacts/<suite>/ (make run's output too).
# Needs root on a Debian/Ubuntu machine (debootstrap is installed when missing). Nothing is kept: the
# system is built in a fresh temp folder and removed afterwards (CASTD_CHROOT_KEEP=1 keeps it).
# `make test-debian13` runs it for trixie; .ci/run runs that after the Debian 12 suite. Prints each step's duration.
#
# To look into one test on that Debian, again and again (a few minutes the first time, then seconds to start):
#   CASTD_CHROOT_KEEP=1 CASTD_CHROOT_ONLY_TESTS=1 PYTEST_ARGS="-x tests/test_faults.py -k hung" platforms/debian.sh
# keeps the folder (it says where); then
#   CASTD_CHROOT_REUSE=/var/tmp/castd-trixie.XXXXXX CASTD_CHROOT_ONLY_TESTS=1 PYTEST_ARGS=... platforms/debian.sh
# mounts it again, copies this repository in afresh (the venv and node_modules stay), runs only the tests
# named (make test PYTEST_ARGS=...), and leaves it kept and unmounted. Pytest's temp folders (a test's
# daemon.log among them) are in the chroot's /tmp, a tmpfs that goes with the mounts: CASTD_CHROOT_TMP_KEEP=1
# copies /tmp/pytest-of-root to artifacts/<suite>/pytest/ before that.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
. "$HERE/chroot.sh"

SUITE=${1:-trixie}
MIRROR=${DEBIAN_MIRROR:-$(host_mirror)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
[ "$(id -u)" = 0 ] || { echo "platforms/debian.sh: run it as root (debootstrap, chroot, mounts)" >&2; exit 1; }
command -v debootstrap >/dev/null || {
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap; }

if [ -n "${CASTD_CHROOT_REUSE:-}" ]; then
    WORK=$(cd "$CASTD_CHROOT_REUSE" && pwd)
    rm -f "$WORK/times"  # this run's steps only
    export CASTD_CHROOT_KEEP=1  # what was kept stays kept
    [ -x "$WORK/root/usr/bin/python3" ] || { echo "platforms/debian.sh: no kept system in $WORK/root" >&2; exit 1; }
else
    WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/castd-$SUITE.XXXXXX")
fi
ROOT=$WORK/root
ART=$REPO/artifacts/$SUITE  # what the run leaves to look at: make run's output, the frames the suite saved
rm -rf "$ART" && mkdir -p "$ART"
trap chroot_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
say "Debian $SUITE from $MIRROR in $ROOT"

bootstrap() {
    debootstrap --variant=minbase --include=python3,make,ca-certificates "$SUITE" "$ROOT" "$MIRROR" \
        >"$WORK/debootstrap.log" 2>&1 || { tail -n 30 "$WORK/debootstrap.log" >&2; return 1; }
}
if [ -z "${CASTD_CHROOT_REUSE:-}" ]; then
    step "debootstrap $SUITE (minbase + python3 make)" bootstrap
    chroot_sources "$SUITE" "$MIRROR"
    chroot_prepare
fi
chroot_mount
# afresh each time (what was deleted here goes there too); the venv, node_modules and artifacts stay
if [ -d "$ROOT/root/castd" ]; then
    find "$ROOT/root/castd" -mindepth 1 -maxdepth 1 ! -name .venv ! -name tests ! -name artifacts \
        -exec rm -rf {} +
    find "$ROOT/root/castd/tests" -mindepth 1 -maxdepth 1 ! -name glass -exec rm -rf {} + 2>/dev/null || true
fi
copy_repo "$REPO" "$ROOT/root/castd"
say "inside: $(chroot_run python3 --version), $(chroot_run sh -c '. /etc/os-release; echo $PRETTY_NAME')"

demo() {
    local port pid rc=0
    port=$(free_port)
    # its own session, like a terminal's foreground job, so that Ctrl-C (SIGINT) reaches the whole group
    setsid env -i PATH="$CHROOT_PATH" HOME=/root LANG=C.UTF-8 TERM=dumb USER=root LOGNAME=root \
        chroot "$ROOT" sh -c "cd /root/castd && exec make run PORT=$port" >"$WORK/make-run.log" 2>&1 &
    pid=$!
    python3 "$HERE/demo_check.py" "$port" 600 || rc=1
    kill -INT -- -"$pid" 2>/dev/null || true
    for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$pid" 2>/dev/null; then
        echo "make run did not end 30 s after Ctrl-C" >&2; rc=1
    fi
    wait "$pid" 2>/dev/null || true
    sleep 1
    if [ -n "$(chroot_pids)" ]; then
        echo "left running after make run ended:" >&2; ps -o pid,args -p "$(chroot_pids | paste -sd,)" >&2; rc=1
    fi
    grep -q "castd stopped" "$WORK/make-run.log" || { echo "no 'castd stopped' from make run" >&2; rc=1; }
    cp "$WORK/make-run.log" "$ART/make-run.log"
    [ $rc = 0 ] || tail -n 40 "$WORK/make-run.log" >&2
    grep -E "castd: installing Debian packages|warning|WARNING|Deprecat" "$WORK/make-run.log" >&2 || true
    return $rc
}
[ "${CASTD_CHROOT_ONLY_TESTS:-}" = 1 ] || step "make run: install, demo streams, Ctrl-C" demo
tests() {
    local rc=0
    chroot_run env PYTEST_ARGS="${PYTEST_ARGS:-}" sh -c 'cd /root/castd && make test PYTEST_ARGS="$PYTEST_ARGS"' ||
        rc=$?
    if [ "${CASTD_CHROOT_TMP_KEEP:-}" = 1 ] && [ -d "$ROOT/tmp/pytest-of-root" ]; then
        mkdir -p "$ART/pytest" && cp -r "$ROOT/tmp/pytest-of-root/." "$ART/pytest/"
    fi
    # the decoded frames the suite saved (the demo, error cards...), to look at: artifacts/<suite>/
    if [ -d "$ROOT/root/castd/artifacts" ]; then
        cp -r "$ROOT/root/castd/artifacts/." "$ART/"
    fi
    return $rc
}
step "make test" tests
if [ "${CASTD_CHROOT_ONLY_TESTS:-}" = 1 ]; then say "Debian $SUITE: make test PYTEST_ARGS='${PYTEST_ARGS:-}' passed"
else say "Debian $SUITE: make run and make test passed"; fi
