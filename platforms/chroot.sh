# Shared by platforms/debian.sh and platforms/arm64.sh (sourced, bash): a throw-away Debian system in a
# folder, made with debootstrap from the mirror this machine's apt already uses, with the mounts a browser
# needs, every step timed, and everything (processes, mounts, the folder) removed on every way out.
#
# Usage: set WORK (a fresh folder, e.g. from mktemp -d) and ROOT="$WORK/root", then
#   trap chroot_cleanup EXIT; trap 'exit 130' INT; trap 'exit 143' TERM
#   step "name" command...        runs and times one step; chroot_times prints the table at the end
# CASTD_CHROOT_KEEP=1 keeps the folder (mounts and processes are still ended) to look at it afterwards.

CHROOT_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
CHROOT_MOUNTS=()   # mounted by us, in order; unmounted in reverse

say() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# step NAME COMMAND...: run it, record how long it took (also when it fails)
step() {
    local name=$1 t0 t1 rc=0
    shift
    say "== $name"
    t0=$(date +%s.%N)
    "$@" || rc=$?
    t1=$(date +%s.%N)
    printf '%-44s %8.1f s  %s\n' "$name" "$(awk "BEGIN { print $t1 - $t0 }")" "$([ $rc = 0 ] && echo ok || echo "FAILED ($rc)")" \
        >>"$WORK/times"
    return $rc
}

chroot_times() {
    [ -s "$WORK/times" ] || return 0
    echo "---- step durations ($(uname -m) host, $(nproc) cores) ----"
    cat "$WORK/times"
}

# the Debian mirror this machine's apt uses (deb822 .sources or one-line .list), for debootstrap and the chroot
host_mirror() {
    local uri
    uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
          grep -oE '(deb +(\[[^]]*\] +)?|URIs: *)https?://[^ ]+/debian/?( |$)' | grep -oE 'https?://[^ ]+' |
          head -n 1)
    echo "${uri%/}"
}

# chroot_sources SUITE: the chroot's apt sources: SUITE, SUITE-updates and SUITE-security, like an installed system
chroot_sources() {
    local suite=$1 mirror=$2
    rm -f "$ROOT/etc/apt/sources.list"
    cat >"$ROOT/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${mirror}-security
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
}

# chroot_prepare: what a booted system has that a bare debootstrap folder lacks, and no service starts
chroot_prepare() {
    cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
    printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$ROOT/etc/hosts"
    # this machine's trusted CAs (a TLS-inspecting network's own CA among them), so that apt and pip reach
    # their registries from inside as they do from outside; kept through update-ca-certificates runs
    if [ -s /etc/ssl/certs/ca-certificates.crt ]; then
        mkdir -p "$ROOT/usr/local/share/ca-certificates"
        cp /etc/ssl/certs/ca-certificates.crt "$ROOT/usr/local/share/ca-certificates/castd-host-cas.crt"
        chroot_run update-ca-certificates >/dev/null 2>&1 || true
    fi
    # Packages must not start services in a chroot (they would run on this machine, outside any init):
    # the standard policy-rc.d that denies it. A booted Pi starts them with systemd as usual.
    printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
    chmod 0755 "$ROOT/usr/sbin/policy-rc.d"
}

mount_one() {
    local target=$ROOT$1
    shift
    mkdir -p "$target"
    mount "$@" "$target"
    CHROOT_MOUNTS+=("$target")
}

# chroot_mount: /proc, /sys, a private /dev/pts, /dev/shm (Chromium needs it) and /tmp as tmpfs.
# /dev itself keeps the device nodes debootstrap made; nothing of this machine's /dev is bound in.
chroot_mount() {
    local node
    for node in null:1:3 zero:1:5 full:1:7 random:1:8 urandom:1:9 tty:5:0; do
        IFS=: read -r name major minor <<<"$node"
        [ -c "$ROOT/dev/$name" ] || { rm -f "$ROOT/dev/$name"; mknod -m 0666 "$ROOT/dev/$name" c "$major" "$minor"; }
    done
    mount_one /proc -t proc proc
    mount_one /sys -t sysfs sysfs
    mount_one /dev/pts -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts
    rm -f "$ROOT/dev/ptmx" && ln -s pts/ptmx "$ROOT/dev/ptmx"
    mount_one /dev/shm -t tmpfs -o mode=1777,size=1g shm
    mount_one /tmp -t tmpfs -o mode=1777,size=4g tmp
}

# chroot_run COMMAND...: as root inside, with the clean environment of a login shell (nothing of ours leaks in)
chroot_run() {
    env -i PATH="$CHROOT_PATH" HOME=/root LANG=C.UTF-8 TERM=dumb USER=root LOGNAME=root \
        chroot "$ROOT" "$@"
}

# chroot_pids: the processes whose root is our chroot (all of them started by this script)
chroot_pids() {
    local p
    [ -n "${ROOT:-}" ] || return 0
    for p in /proc/[0-9]*; do
        [ "$(readlink "$p/root" 2>/dev/null)" = "$ROOT" ] && echo "${p#/proc/}"
    done
    return 0
}

# chroot_cleanup [RC]: the EXIT trap (exits with RC, default the status the script was leaving with)
chroot_cleanup() {
    local rc=${1:-$?} pids i left
    trap - EXIT INT TERM
    set +e
    pids=$(chroot_pids)
    if [ -n "$pids" ]; then
        say "ending processes left in the chroot: $(echo $pids)"
        kill -TERM $pids 2>/dev/null; sleep 2
        pids=$(chroot_pids); [ -z "$pids" ] || kill -KILL $pids 2>/dev/null; sleep 0.5
    fi
    for ((i = ${#CHROOT_MOUNTS[@]} - 1; i >= 0; i--)); do
        umount "${CHROOT_MOUNTS[i]}" 2>/dev/null || umount -l "${CHROOT_MOUNTS[i]}"
    done
    CHROOT_MOUNTS=()
    chroot_times
    if [ -n "${WORK:-}" ] && [ -d "$WORK" ]; then
        left=$(awk -v r="$WORK/" 'index($2, r) == 1 {print $2}' /proc/mounts)
        if [ -n "$left" ]; then
            say "still mounted, NOT removing $WORK: $left"; rc=1
        elif [ "${CASTD_CHROOT_KEEP:-}" = 1 ]; then
            say "kept $WORK (CASTD_CHROOT_KEEP=1)"
        else
            rm -rf --one-file-system "$WORK"
        fi
    fi
    exit $rc
}

# copy_repo SRC DEST: the repository as a fresh clone has it, with uncommitted work (git on this machine
# lists the files; no .git, nothing .gitignore names, so no venv or node_modules)
copy_repo() {
    mkdir -p "$2"
    git -C "$1" ls-files -z --cached --others --exclude-standard --deduplicate |
        tar -C "$1" --null --ignore-failed-read -T - -cf - | tar -C "$2" -xf -
}

# free_port: a TCP port free on this machine's loopback (the chroot shares the network)
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
