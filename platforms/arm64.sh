#!/usr/bin/env bash
# castd on arm64 (the 64-bit Raspberry Pi OS), emulated: a minimal Debian 13 "trixie" arm64 system, its
# programs run by qemu-user-static through binfmt_misc, this repository copied in, then inside it: the Debian
# packages (make system-deps), castd and its dependencies from wheels only (PIP_ONLY_BINARY=:all:, so nothing is
# compiled: the proof that every dependency ships an aarch64 wheel), `castd doctor`, the demo (`make run`) until
# a segment is finished, and that segment decoded with PyAV.
# The system is made with mmdebstrap, not debootstrap --foreign: debootstrap's second stage runs its shell and
# perl under emulation (here it had not finished the base system after 50 min on 2 busy cores); mmdebstrap
# resolves and downloads with this machine's apt and emulates only dpkg and the maintainer scripts.
# Not part of CI (slow: every instruction is emulated). Prints each step's duration.
#   sudo platforms/arm64.sh [FRAME.png]      (FRAME.png: where to save the decoded frame to look at)
# Needs root on a Debian/Ubuntu machine with binfmt_misc in its kernel; mmdebstrap and qemu-user-static are
# installed when missing. The system is built in a fresh temp folder and removed afterwards.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
. "$HERE/chroot.sh"

SUITE=trixie
FRAME_OUT=${1:-}
MIRROR=${DEBIAN_MIRROR:-$(host_mirror)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
BINFMT=/proc/sys/fs/binfmt_misc
AARCH64_MAGIC=7f454c460201010000000000000000000200b700
[ "$(id -u)" = 0 ] || { echo "platforms/arm64.sh: run it as root (debootstrap, binfmt_misc, chroot, mounts)" >&2; exit 1; }
missing=""
command -v mmdebstrap >/dev/null || missing="$missing mmdebstrap"
command -v qemu-aarch64-static >/dev/null || missing="$missing qemu-user-static"
if [ -n "$missing" ]; then
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
fi

# binfmt_misc: the kernel runs an aarch64 ELF with qemu-aarch64-static. Use a registered handler when there is
# one (Debian's qemu-user-static registers qemu-aarch64), else register our own with the F flag (the kernel
# opens the interpreter now, so it need not exist inside the chroot) and remove it on the way out.
OWN_BINFMT=""
binfmt_handler() {  # prints the enabled aarch64 handler's file, if any
    local f
    for f in "$BINFMT"/*; do
        [ -f "$f" ] && [ "${f##*/}" != status ] && [ "${f##*/}" != register ] || continue
        grep -q "^enabled" "$f" && grep -q "^magic $AARCH64_MAGIC" "$f" && { echo "$f"; return 0; }
    done
    return 1
}
binfmt_setup() {
    local handler
    if [ ! -e "$BINFMT/register" ]; then
        mount -t binfmt_misc binfmt_misc "$BINFMT" ||
            { echo "binfmt_misc cannot be mounted here (kernel without it, or no CAP_SYS_ADMIN)" >&2; return 1; }
    fi
    [ "$(cat "$BINFMT/status")" = enabled ] || echo 1 >"$BINFMT/status"
    if ! handler=$(binfmt_handler); then
        update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
    fi
    if ! handler=$(binfmt_handler); then
        OWN_BINFMT=castd-aarch64
        printf ':%s:M::\\x7fELF\\x02\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02\\x00\\xb7\\x00:\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\x00\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfe\\xff\\xff\\xff:%s:FP\n' \
            "$OWN_BINFMT" "$(command -v qemu-aarch64-static)" >"$BINFMT/register" ||
            { echo "cannot register a binfmt_misc handler for aarch64" >&2; return 1; }
        handler=$BINFMT/$OWN_BINFMT
    fi
    say "binfmt: $(basename "$handler"): $(grep -E '^(interpreter|flags)' "$handler" | paste -sd' ')"
    BINFMT_INTERPRETER=$(awk '/^interpreter/ {print $2}' "$handler")
    BINFMT_FLAGS=$(awk '/^flags/ {print $2}' "$handler")
}
cleanup() {
    local rc=$?
    [ -z "$OWN_BINFMT" ] || echo -1 >"$BINFMT/$OWN_BINFMT" 2>/dev/null || true
    chroot_cleanup "$rc"
}

WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/castd-arm64.XXXXXX")
ROOT=$WORK/root
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
say "Debian 13 ($SUITE) arm64 from $MIRROR in $ROOT"

step "binfmt_misc: aarch64 via qemu-user-static" binfmt_setup
bootstrap() {
    local hook=()
    case "$BINFMT_FLAGS" in  # without the F flag the interpreter must be in the chroot before dpkg runs there
        *F*) ;;
        *) hook=(--setup-hook="mkdir -p \"\$1$(dirname "$BINFMT_INTERPRETER")\" && cp \"$(readlink -f "$BINFMT_INTERPRETER")\" \"\$1$BINFMT_INTERPRETER\"") ;;
    esac
    mmdebstrap --variant=minbase --architectures=arm64 --include=python3,make,ca-certificates "${hook[@]}" \
        "$SUITE" "$ROOT" "$MIRROR" >"$WORK/mmdebstrap.log" 2>&1 ||
        { tail -n 30 "$WORK/mmdebstrap.log" >&2; return 1; }
}
step "mmdebstrap $SUITE arm64 (dpkg emulated)" bootstrap
chroot_sources "$SUITE" "$MIRROR"
chroot_prepare
chroot_mount
copy_repo "$REPO" "$ROOT/root/castd"
say "inside: $(chroot_run uname -m), $(chroot_run python3 --version), $(chroot_run sh -c '. /etc/os-release; echo $PRETTY_NAME')"

inside() { chroot_run sh -c "cd /root/castd && $1"; }
step "apt: make system-deps (emulated)" inside "make system-deps"
step "pip: make venv, wheels only (emulated)" inside "PIP_ONLY_BINARY=:all: make venv"
inside ".venv/bin/pip list 2>/dev/null | grep -iE '^(av|starlette|uvicorn|msgspec|pychromecast|selenium|zeroconf|protobuf) '" || true
step "castd doctor" inside ".venv/bin/castd doctor"

# The demo under emulation: Chromium takes far longer than on any Pi, so castd is given the patience a slow
# machine needs (its own settings, as a user would set them), not a different code path.
demo() {
    local port pid rc=0
    port=$(free_port)
    setsid env -i PATH="$CHROOT_PATH" HOME=/root LANG=C.UTF-8 TERM=dumb USER=root LOGNAME=root \
        CASTD_PAGE_LOAD_TIMEOUT=300 CASTD_FRAME_STALL_SECONDS=120 CASTD_SEGMENT_STALL_SECONDS=300 \
        chroot "$ROOT" sh -c "cd /root/castd && exec make run PORT=$port" >"$WORK/make-run.log" 2>&1 &
    pid=$!
    python3 "$HERE/demo_check.py" "$port" 1800 "$ROOT/root/segment.ts" || rc=1
    kill -INT -- -"$pid" 2>/dev/null || true
    for _ in $(seq 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && { echo "make run did not end 60 s after Ctrl-C" >&2; rc=1; }
    wait "$pid" 2>/dev/null || true
    [ $rc = 0 ] || tail -n 60 "$WORK/make-run.log" >&2
    return $rc
}
step "make run: demo until a segment exists" demo

decode() {
    inside ".venv/bin/python - <<'EOF'
import av
with av.open('/root/segment.ts') as container:
    video = container.streams.video[0]
    frames = [f for f in container.decode(video)]
    audio = [s.codec_context.name for s in container.streams.audio]
first = frames[0].to_ndarray(format='rgb24')
print(f'decoded /root/segment.ts with PyAV {av.__version__}: {len(frames)} frames of {video.codec_context.name} '
      f'{video.codec_context.profile} {frames[0].width}x{frames[0].height}, audio {audio}, '
      f'mean RGB {[round(float(first[..., c].mean()), 1) for c in range(3)]}, distinct colours in the first frame '
      f'{len({tuple(p) for p in first[::8, ::8].reshape(-1, 3)})}')
assert frames and frames[0].width >= 1280
rgb = frames[-1].reformat(format='rgb24')  # the last picture of the segment, as PNG (PyAV's encoder)
rgb.pts = 0
with av.open('/root/frame.png', 'w', format='image2', options={'update': '1'}) as out:
    stream = out.add_stream('png', rate=1)
    stream.width, stream.height, stream.pix_fmt = rgb.width, rgb.height, 'rgb24'
    for packet in [*stream.encode(rgb), *stream.encode(None)]:
        out.mux(packet)
EOF"
}
step "decode the segment (PyAV, emulated)" decode
if [ -n "$FRAME_OUT" ] && [ -f "$ROOT/root/frame.png" ]; then cp "$ROOT/root/frame.png" "$FRAME_OUT"; fi
say "arm64: castd doctor passed, the demo streamed, its segment decodes"
