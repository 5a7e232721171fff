"""Fault injection against the real daemon: kills, stalls, crash loops, supervisor death, systemd."""

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

from castd import paths

from helpers import (ROOT, Daemon, PageHandler, close_to, cmdline, comm, descendants, fetch_segment, media_playlist_url,
                     open_segment, rgb_at, segment_urls, still_alive, wait_for)
from test_supervisor import EncoderCounter, encoder_children


@pytest.fixture(scope="module")
def fault_daemon(tmp_path_factory):
    """castd with short watchdogs and a $TMPDIR of its own (short: Chromium's socket lives there), which
    must be empty once castd has ended, whatever the tests did to it, as must its runtime dir (but for empty
    folders); /dev/shm must gain nothing."""
    tmpdir = Path(tempfile.mkdtemp(prefix="ctmp", dir="/tmp"))
    shm_before = set(os.listdir("/dev/shm"))
    d = Daemon(runtime_dir=tmp_path_factory.mktemp("faults") / "run",
               env_extra={"CASTD_FRAME_STALL_SECONDS": "3", "CASTD_SEGMENT_STALL_SECONDS": "4",
                          "CASTD_MAX_RESTARTS": "3", "CASTD_RENDERER_HEAP_MB": "128",
                          "CASTD_RETRY_SECONDS": "3", "CASTD_SUPERVISOR_TIMEOUT": "5",
                          "CASTD_PAGE_HANG_SECONDS": "3", "TMPDIR": str(tmpdir)}).start()
    d.tmpdir = tmpdir
    yield d
    d.finish()
    in_runtime = sorted(str(p.relative_to(d.runtime_dir)) for p in d.runtime_dir.rglob("*") if not p.is_dir())
    assert not in_runtime, f"castd left files in its runtime dir: {in_runtime[:20]}"
    left = sorted(str(p.relative_to(tmpdir)) for p in tmpdir.rglob("*"))
    shutil.rmtree(tmpdir, ignore_errors=True)
    assert not left, f"castd left files in its $TMPDIR: {left[:20]}"
    assert not set(os.listdir("/dev/shm")) - shm_before


def encoder_tmp_dirs(d) -> list[Path]:
    """The $TMPDIR folders of castd's encoders now (castd/paths.tmp_root: in $TMPDIR for a deep runtime dir)."""
    roots = [d.runtime_dir / "tmp", *d.tmpdir.glob("castd-*")]
    return [child for root in roots if root.is_dir() for child in root.iterdir()]


def stray_tmp_files(d) -> list[str]:
    """What lies in castd's $TMPDIR outside its encoders' folders (Chromium's profile or org.chromium.*
    there would mean Chromium did not get the encoder's $TMPDIR)."""
    return [p.name for p in d.tmpdir.iterdir() if not p.name.startswith("castd-")]


@pytest.fixture
def streaming(fault_daemon, pages):
    d = fault_daemon
    d.post("/stop")
    d.wait_state("idle")
    body = d.post("/start", json={"url": pages.url("/color/20a040")}).json()
    d.wait_state("streaming", timeout=30)
    return d, body


def newest_sequence(media_url):
    text = httpx.get(media_url, timeout=5).text
    for line in text.splitlines():
        if line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            return int(line.split(":")[1]) + text.count("#EXTINF")
    return 0


KILLS = 5  # each leaves its trace (a $TMPDIR, a log folder, fds, /dev/shm) after one; many: bench.month


def test_sigkill_encoder_five_times(streaming):
    """Was ten: every check below holds after the first kill already (exactly one live $TMPDIR, one log
    folder, no fd more than before), so a leak shows in five; a leak of 1 kill in 10 is bench.month's to
    find (`python -m bench.month --minutes 60`: 100 encoder SIGKILLs, fds, files and /dev/shm flat), and
    test_glass_cast kills three more under a playing Shaka."""
    d, body = streaming
    shm_before = set(os.listdir("/dev/shm"))
    supervisor = d.status()["supervisor_pid"]
    fds_before = len(os.listdir(f"/proc/{supervisor}/fd"))
    media_url = media_playlist_url(body["stream_url"])
    restarts0 = d.status()["restarts"]
    latencies = []
    for i in range(KILLS):
        status = d.status()
        pid, newest = status["encoder_pid"], newest_sequence(media_url)
        d.record_descendants()
        killed_at = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: d.status()["encoder_pid"] not in (None, pid), 15, message="new encoder")
        wait_for(lambda: newest_sequence(media_url) > newest + 1, 20, message=f"new segments after kill {i}")
        latencies.append(time.monotonic() - killed_at)
        d.wait_state("streaming", timeout=20)
    status = d.status()
    assert status["restarts"] - restarts0 == KILLS
    assert status["session"] == body["session"]
    assert status["stream_url"] == body["stream_url"]
    assert "#EXT-X-DISCONTINUITY" in httpx.get(media_url, timeout=5).text
    assert httpx.get(body["stream_url"], timeout=5).status_code == 200
    latencies.sort()
    print(f"\nkill -> new segment: median {latencies[KILLS // 2]:.2f}s, max {latencies[-1]:.2f}s")
    assert not still_alive({p for p in d.seen if p[0] not in {x for x, _ in descendants(d.process.pid)}})
    # nothing of the killed encoders is left: one $TMPDIR (the live encoder's, its profile inside), one
    # log folder, nothing of Chromium's outside them, nothing new in /dev/shm
    live = encoder_tmp_dirs(d)
    assert len(live) == 1 and any(p.name.startswith("castd-chromium-") for p in live[0].iterdir()), live
    assert stray_tmp_files(d) == []
    assert len(list((d.runtime_dir / "logs").iterdir())) == 1
    assert not set(os.listdir("/dev/shm")) - shm_before
    fds = len(os.listdir(f"/proc/{supervisor}/fd"))
    print(f"supervisor open fds: {fds_before} before {KILLS} kills, {fds} after")
    assert status["supervisor_pid"] == supervisor and fds <= fds_before


def browser_pid(encoder_pid):
    """The Chromium browser process: the child of the encoder's child that itself has children
    (encoder -> chromedriver -> chromium), found by parent links only."""
    tree = descendants(encoder_pid)
    parents = {}
    for pid, _ in tree:
        try:
            parents[pid] = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, ProcessLookupError):
            pass
    level1 = {p for p, parent in parents.items() if parent == encoder_pid}
    level2 = [p for p, parent in parents.items() if parent in level1]
    return [p for p in level2 if any(parent == p for parent in parents.values())][0]


def test_sigkill_chromium_recovers(streaming):
    d, body = streaming
    status = d.status()
    os.kill(browser_pid(status["encoder_pid"]), signal.SIGKILL)
    wait_for(lambda: d.status()["restarts"] > status["restarts"], 15, message="restart after Chromium died")
    new = d.wait_state("streaming", timeout=30)
    assert new["session"] == body["session"] and new["encoder_pid"] != status["encoder_pid"]
    assert "browser" in (new["last_error"] or "") or "exited" in (new["last_error"] or "")


def test_sigstop_encoder_is_a_stall(streaming):
    d, body = streaming
    status = d.status()
    pid = status["encoder_pid"]
    os.kill(pid, signal.SIGSTOP)
    try:
        wait_for(lambda: d.status()["encoder_pid"] not in (None, pid), 20, message="stalled encoder replaced")
    finally:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
    new = d.wait_state("streaming", timeout=30)
    assert "stalled" in new["last_error"]
    assert new["restarts"] == status["restarts"] + 1
    wait_for(lambda: not still_alive({(pid, s) for p, s in d.seen if p == pid}), 5, message="old encoder gone")


def test_a_hung_page_gets_a_new_browser_then_a_new_encoder_and_the_tv_keeps_its_picture(fault_daemon, pages):
    """/hang/KEY/2: the page hangs its renderer (`for(;;){}`) 1 s after its load, twice; the third load is
    green. The page watchdog (page_hang_seconds 3 here) finds the first hang within 10 s and starts a new
    browser in the same encoder; the second hang gets a new encoder; the third load streams. Meanwhile the
    stream goes on with the last picture (blue, never Chromium's crashed-tab page), /health says why."""
    d = fault_daemon
    d.post("/stop")
    d.wait_state("idle")
    body = d.post("/start", json={"url": pages.url(f"/hang/{time.monotonic_ns()}/2")}).json()
    first = d.wait_state("streaming", timeout=30)
    streaming_at = time.monotonic()
    unhealthy, watching = [], threading.Event()
    media_url = media_playlist_url(body["stream_url"])
    colours: dict[str, set] = {}  # segment -> the colours of its frames (a pixel in the middle)

    def watch_health():
        while not watching.is_set():
            health = d.get("/health")
            if health.status_code == 503:
                unhealthy.append(health.json().get("reason", ""))
            for url in segment_urls(media_url):
                if url not in colours:
                    try:
                        with open_segment(fetch_segment(url)) as container:
                            colours[url] = {rgb_at(frame, 200, 200) for frame in container.decode(video=0)}
                    except httpx.HTTPError:
                        pass
            time.sleep(0.05)

    watcher = threading.Thread(target=watch_health)
    watcher.start()
    try:
        wait_for(lambda: d.status()["page_hangs"] >= 1, 12, interval=0.05, message="the first hang found")
        found_in = time.monotonic() - streaming_at
        after_first = d.status()
        assert after_first["encoder_pid"] == first["encoder_pid"], "the first cure is a new browser, not an encoder"
        wait_for(lambda: d.status()["page_hangs"] >= 2, 20, message="the second hang found")
        restarted = wait_for(lambda: (s := d.status())["restarts"] > first["restarts"] and s["state"] == "streaming"
                             and s["page"] == "loaded" and s, 30, message="a new encoder streaming the page")
        assert restarted["encoder_pid"] != first["encoder_pid"] and restarted["session"] == body["session"]
        assert restarted["page_hangs"] == 2 and "page hung" in restarted["last_error"]
        wait_for(lambda: d.get("/health").status_code == 200, 10, message="healthy again")
        log = d.log()
        assert "page hung; starting a new browser" in log and "page hung; restarting the encoder" in log
        assert "WARNING" in [line for line in log.splitlines() if "page hung; starting" in line][0]
        assert any("page hung" in reason for reason in unhealthy), unhealthy
        # every frame of the session was the blue page, or (at the end) green: never a blank or crashed tab
        wait_for(lambda: any(close_to(c, (0, 255, 0), 60) for seen in list(colours.values()) for c in seen), 15,
                 message="the green page in the stream")
        assert len(colours) >= 10, "segments seen from the start to the end of the cures"
        for url, seen in list(colours.items()):
            assert all(close_to(c, (0x20, 0x40, 0xC0), 60) or close_to(c, (0, 255, 0), 60) for c in seen), (url, seen)
    finally:
        watching.set()
        watcher.join()
    print(f"\nhung page found {found_in:.1f}s after streaming began (hang at ~1 s)")


def test_crashing_page_gives_up_then_comes_back_by_itself_once_mended(fault_daemon, pages):
    """After max_restarts the session is `retrying`, not over: a new round starts after retry_seconds
    (3 s here, 60 s by default; castd/children/policy.py RetryLater), and once the page works again (its
    host rebooted, the Wi-Fi is back) the TV gets its picture back with nobody acting."""
    d = fault_daemon
    d.post("/stop")
    d.wait_state("idle")
    key = uuid.uuid4().hex
    started = time.monotonic()
    body = d.post("/start", json={"url": pages.url(f"/broken/{key}")}).json()
    failed = d.wait_state("retrying", timeout=90)
    PageHandler.broken[key] = False  # the cause goes away while castd waits (the next round is 3 s away)
    elapsed = time.monotonic() - started
    print(f"\ncrash page: gave up after {elapsed:.1f}s with {failed['restarts']} restarts")
    assert failed["restarts"] == 2  # max_restarts=3 failed starts: the first try and 2 restarts
    assert "crashed" in failed["last_error"] and "gave up" in failed["last_error"]
    assert failed["retries"] == 1 and failed["retry_at"] > time.time() - 1
    health = d.get("/health")
    assert health.status_code == 503 and "retrying" in health.json()["reason"]
    assert not encoder_children(d, failed["supervisor_pid"])
    ok = d.wait_state("streaming", timeout=40)
    print(f"mended page back on screen {time.monotonic() - started:.1f}s after the start")
    assert ok["session"] == body["session"] and ok["retries"] == 1 and ok["retry_at"] is None
    assert d.get("/health").status_code == 200


def test_sigkill_supervisor_is_replaced_and_its_tree_ends(streaming):
    d, body = streaming
    old = d.status()
    tree = d.record_descendants()
    old_tree = {p for p in tree if p[0] != _resource_tracker_of(d)}
    os.kill(old["supervisor_pid"], signal.SIGKILL)
    wait_for(lambda: d.status()["supervisor_pid"] not in (None, old["supervisor_pid"]), 10,
             message="a new supervisor")
    wait_for(lambda: not still_alive(old_tree), 10,
             message=f"old tree gone: {[(p, comm(p)) for p, _ in still_alive(old_tree)]}")
    health = d.get("/health").json()
    assert health["ok"] is True and "supervisor exited" in health["note"]
    assert d.status()["supervisor_restarts"] == 1
    # and it works again
    d.post("/start", json={"url": body["url"]})
    d.wait_state("streaming", timeout=30)


def test_a_wedged_supervisor_is_ended_and_replaced(streaming):
    """SIGSTOP: the supervisor keeps its PID and its pipe but answers nothing. The front end's ping finds it
    (supervisor_timeout 5 s here, 10 s by default), kills it, ends what it left, starts a new one."""
    d, body = streaming
    old = d.status()
    old_tree = {p for p in d.record_descendants() if p[0] != _resource_tracker_of(d)}
    os.kill(old["supervisor_pid"], signal.SIGSTOP)
    stopped = time.monotonic()
    try:
        wait_for(lambda: d.status()["supervisor_pid"] not in (None, old["supervisor_pid"]), 20,
                 message="a new supervisor")
    finally:
        try:
            os.kill(old["supervisor_pid"], signal.SIGCONT)
        except ProcessLookupError:
            pass
    print(f"\nwedged supervisor replaced after {time.monotonic() - stopped:.1f}s")
    wait_for(lambda: not still_alive(old_tree), 10,
             message=f"old tree gone: {[(p, comm(p)) for p, _ in still_alive(old_tree)]}")
    assert "supervisor not answering; ending it" in d.log()
    assert "not answering" in d.get("/health").json()["note"]
    d.post("/start", json={"url": body["url"]})
    d.wait_state("streaming", timeout=30)


def test_an_upgrade_in_place_ends_castd_once_for_systemd_to_restart(tmp_path, pages):
    """`make install-service` replaces castd's files under a running castd. The next child imports the new
    files: it refuses to run beside its older parent (exit code 4, logged once), nothing retries it, and
    castd exits non-zero, so systemd's Restart=on-failure starts the new version."""
    tree = tmp_path / "tree"
    shutil.copytree(ROOT / "castd", tree / "castd", ignore=shutil.ignore_patterns("__pycache__"))
    d = Daemon(runtime_dir=tmp_path / "run", cwd=tree).start()
    try:
        d.record_descendants()
        with open(tree / "castd" / "protocol.py", "a") as fh:  # the upgrade: a new protocol on disk
            fh.write("\n# castd 0.1.1: one more field somewhere\n")
        d.post("/start", json={"url": pages.url("/color/203040")})
        code = d.process.wait(20)
        log = d.log()
        assert code == 4, log
        assert log.count("castd was upgraded while running: this process is another version") == 1, log
        assert "ending this castd so the new one can start" in log
        assert "exiting so that the new version starts" in log
        assert "encoder failed; restarting" not in log and "supervisor died" not in log, "no restart loop"
    finally:
        d.finish()


def _resource_tracker_of(d):
    """multiprocessing's resource tracker of the front end: a direct child that is not the supervisor."""
    supervisor = d.status()["supervisor_pid"]
    for pid, _ in descendants(d.process.pid):
        parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        if parent == d.process.pid and pid != supervisor:
            return pid
    return None


def test_two_hundred_mixed_requests(fault_daemon, pages):
    d = fault_daemon
    d.post("/stop")
    d.wait_state("idle")
    supervisor_pid = d.status()["supervisor_pid"]
    async def fire():
        limits = httpx.Limits(max_connections=50)
        async with httpx.AsyncClient(base_url=d.base, timeout=60, limits=limits) as client:
            async def one(i):
                if i % 3 == 2:
                    return await client.post("/stop")
                return await client.post("/start", json={"url": pages.url(f"/color/{i:06x}")})
            return await asyncio.gather(*[one(i) for i in range(200)])

    with EncoderCounter(d, supervisor_pid) as counter:
        responses = asyncio.run(fire())
        time.sleep(1)
    samples = counter.samples
    assert all(r.status_code < 500 for r in responses), {r.status_code for r in responses}
    assert all(r.status_code == 200 for r in responses)
    last = max((r.json() for r in responses), key=lambda b: b["seq"])
    assert len(samples) > 20 and max(samples) <= 1
    if "session" in last:
        status = d.wait_state("streaming", timeout=30)
        assert status["url"] == last["url"]
    else:
        d.wait_state("idle", timeout=10)
        assert not encoder_children(d, supervisor_pid)


def test_a_missing_browser_gives_up_at_once_without_quick_restarts(tmp_path, pages):
    """exits.CANNOT_BOOT: a child that cannot boot says so, and the round gives up at its first try (the
    next round comes minutes later: a binary an upgrade was replacing may be back by then)."""
    d = Daemon(runtime_dir=tmp_path / "run", env_extra={"CASTD_XVFB": str(tmp_path / "no-such-Xvfb")}).start()
    try:
        started = time.monotonic()
        d.post("/start", json={"url": pages.url("/color/123456")})
        failed = d.wait_state("retrying", timeout=30)
        print(f"\nmissing Xvfb: gave up after {time.monotonic() - started:.1f}s")
        assert failed["restarts"] == 0 and "cannot boot" in failed["last_error"]
        assert "no-such-Xvfb" in failed["last_error"]
        assert not encoder_children(d, failed["supervisor_pid"])
    finally:
        d.finish()


def test_a_browser_start_that_hangs_is_ended_and_tried_again_without_leaving_its_processes(tmp_path, pages):
    """A Chromium that never comes up (here: a script that sleeps, so chromedriver waits 60 s for it) holds
    the page thread in selenium's start call. The page watchdog finds it after BROWSER_START_BUDGET plus
    page_hang_seconds (13 s here; it was page_load_timeout + 5 = 25 s), kills chromedriver and what it
    started, and starts a browser again in the same encoder; nothing of the stuck one is left."""
    from castd.encoder.page import BROWSER_START_BUDGET

    marker = f"castd-test-hung-chromium-{uuid.uuid4().hex[:8]}"
    fake = tmp_path / "chromium"
    fake.write_text(f"#!/bin/bash\nexec -a {marker} sleep 600\n")
    fake.chmod(0o755)

    def stuck() -> list[int]:
        return [pid for pid in map(int, filter(str.isdigit, os.listdir("/proc")))
                if cmdline(pid).startswith(marker)]

    tmpdir = Path(tempfile.mkdtemp(prefix="ctmp", dir="/tmp"))
    d = Daemon(runtime_dir=tmp_path / "run", env_extra={"CASTD_CHROMIUM": str(fake), "CASTD_PAGE_HANG_SECONDS": "3",
                                                        "TMPDIR": str(tmpdir)}).start()
    try:
        d.post("/start", json={"url": pages.url("/color/123456")})
        first = wait_for(stuck, 20, message="the first Chromium started (and stuck)")
        asked = time.monotonic()
        encoder = wait_for(lambda: d.status()["encoder_pid"], 10, message="the encoder's pid")
        wait_for(lambda: d.status()["page_hangs"] >= 1, BROWSER_START_BUDGET + 3 + 15, message="the stuck start found")
        print(f"\nstuck browser start found {time.monotonic() - asked:.1f}s after Chromium was started")
        assert "page hung; starting a new browser" in d.log() and "browser start" in d.log()
        wait_for(lambda: not set(first) & set(stuck()), 5, message="the stuck Chromium killed")
        again = wait_for(lambda: set(stuck()) - set(first), 10, message="a second browser start")
        assert d.status()["encoder_pid"] == encoder, "the first cure is a new browser in the same encoder"
        d.post("/stop")
        d.wait_state("idle", timeout=20)
        wait_for(lambda: not set(again) & set(stuck()), 10, message="the second stuck Chromium ended by /stop")
    finally:
        d.finish()
        left = sorted(str(p.relative_to(tmpdir)) for p in tmpdir.rglob("*"))
        shutil.rmtree(tmpdir, ignore_errors=True)
    assert not stuck()
    assert not left, f"castd left files in its $TMPDIR: {left[:20]}"


def test_memory_watchdog_reloads_then_restarts_and_the_stream_goes_on(tmp_path, pages):
    """A limit far below any browser: the page is reloaded, then the encoder restarted, and the session,
    its stream URL and its playlist go on (castd/supervisor/memory.py)."""
    d = Daemon(runtime_dir=tmp_path / "run", env_extra={"CASTD_MEMORY_LIMIT_MB": "50",
                                                         "CASTD_MEMORY_CHECK_SECONDS": "1"}).start()
    try:
        body = d.post("/start", json={"url": pages.url("/color/2060a0")}).json()
        first = d.wait_state("streaming", timeout=30)
        reloaded = wait_for(lambda: (s := d.status())["memory_reloads"] >= 1 and s, 20, message="a reload")
        assert reloaded["memory_restarts"] == 0 and reloaded["encoder_pid"] == first["encoder_pid"]
        restarted = wait_for(lambda: (s := d.status())["memory_restarts"] >= 1 and s, 30, message="a restart")
        media_url = media_playlist_url(body["stream_url"])
        newest = newest_sequence(media_url)
        wait_for(lambda: (s := d.status())["state"] == "streaming" and s["encoder_pid"] not in
                 (None, first["encoder_pid"]), 30, message="a new encoder streaming")
        wait_for(lambda: newest_sequence(media_url) > newest, 20, message="new segments after the restart")
        status = d.status()
        assert status["session"] == body["session"] and status["restarts"] == 0 and restarted["last_error"] is None
        assert "memory" in d.log() and "reloading the page" in d.log()
    finally:
        d.finish()


@pytest.mark.parametrize("how", ["ctrl-c to the group", "sigterm to castd"])
def test_an_end_during_a_stream_ends_and_reaps_everything_castd_started(tmp_path, pages, how):
    """Ctrl-C on `make run` sends SIGINT to every process of the terminal's group at once (castd, its
    supervisor, multiprocessing's helpers, make); systemd sends SIGTERM to castd. Either way castd exits 0,
    every process it started is gone, and the front end had nothing to clean up after the supervisor (its
    warning once named Chromium's zygotes and crashpad handlers, which the encoder had killed but not reaped)."""
    d = Daemon(runtime_dir=tmp_path / "run", own_group=True).start()
    try:
        d.post("/start", json={"url": pages.url("/color/123456")})
        d.wait_state("streaming", timeout=30)
        time.sleep(1.5)  # a few segments: the page, its helpers and the encoder all at work
        tree = d.record_descendants()
        tmp_root = paths.tmp_root(d.runtime_dir)  # the encoders' $TMPDIRs (same system temp dir as castd's)
        assert any(tmp_root.glob("*/castd-chromium-*")), "Chromium's profile lives in the encoder's $TMPDIR"
        names = {comm(pid) for pid, _ in tree}
        assert {"Xvfb", "chromedriver", "chromium"} <= names, names  # what the checks below are about
        if how == "ctrl-c to the group":
            os.killpg(d.process.pid, signal.SIGINT)
        else:
            d.process.send_signal(signal.SIGTERM)
        assert d.process.wait(10) == 0
        wait_for(lambda: not still_alive(tree), 3, message="every process castd started gone")
        log = d.log()
        assert "castd stopped" in log and "supervisor exiting" in log
        assert "left by the supervisor" not in log, log[-3000:]
        assert not tmp_root.exists(), list(tmp_root.rglob("*"))[:10]
        assert not [p for p in (d.runtime_dir / "logs").rglob("*") if p.is_file()]
    finally:
        d.finish()


ORPHANS_SCRIPT = """
import os, subprocess, sys, time
from castd.procutil import end_orphans, pid_alive, set_child_subreaper
set_child_subreaper()  # as the supervisor's main() does
ours = subprocess.Popen(["sleep", "60"], start_new_session=True)  # a child of ours leading a group (an encoder)
# what a killed encoder leaves: a helper in a session of its own whose parent has gone (a crashpad handler)
orphan = int(subprocess.run(["sh", "-c", "setsid sleep 60 >/dev/null 2>&1 & echo $!"], capture_output=True,
                            text=True).stdout)
time.sleep(0.2)
adopted = open(f"/proc/{orphan}/stat").read().rsplit(")", 1)[1].split()[1] == str(os.getpid())
left, rounds = end_orphans(keep={ours.pid}), 1
while left and rounds < 50:
    time.sleep(0.02)
    left, rounds = end_orphans(keep={ours.pid}), rounds + 1
print(adopted, os.path.exists(f"/proc/{orphan}"), pid_alive(ours.pid), rounds)
ours.kill()
ours.wait()
"""


def test_a_subreaper_ends_and_reaps_the_orphans_it_adopts_and_keeps_its_own_children():
    """castd/procutil.end_orphans, as the supervisor uses it once an encoder has gone: the orphan is killed
    and reaped (no zombie left), the child it was told to keep still runs."""
    result = subprocess.run([os.sys.executable, "-c", ORPHANS_SCRIPT], capture_output=True, text=True, timeout=30,
                            cwd=ROOT)
    assert result.returncode == 0, result.stderr
    adopted, orphan_exists, ours_alive, rounds = result.stdout.split()
    assert adopted == "True"  # it really was an orphan we had adopted
    assert orphan_exists == "False" and ours_alive == "True", result.stdout
    print(f"\norphan ended and reaped after {rounds} call(s)")


def test_systemd_unit_verifies(tmp_path):
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze not installed")
    unit = (ROOT / "systemd" / "castd.service").read_text()
    assert "Type=notify" in unit and "WatchdogSec=" in unit and "NoNewPrivileges=yes" in unit
    exe = Path(os.sys.executable).parent / "castd"
    path = tmp_path / "castd.service"
    path.write_text(unit.replace("/opt/castd/.venv/bin/castd", str(exe)))
    result = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "castd.service" not in result.stderr, result.stderr


def test_sd_notify_ready_watchdog_status_stopping(tmp_path, pages):
    address = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(0.5)
    received = []
    done = threading.Event()

    def collect():  # read as systemd does, all along (its queue holds 10 datagrams)
        while not done.is_set():
            try:
                received.append(sock.recv(4096).decode())
            except socket.timeout:
                pass

    reader = threading.Thread(target=collect)
    reader.start()
    d = Daemon(runtime_dir=tmp_path / "run", env_extra={"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "2000000"})
    try:
        d.start()
        d.post("/start", json={"url": pages.url("/color/445566")})
        d.wait_state("streaming", timeout=30)
        time.sleep(2.5)
        assert d.stop() == 0
        time.sleep(1)
    finally:
        done.set()
        reader.join()
        d.stop()
        d.kill_leftovers()
        sock.close()
    text = "\n".join(received)
    assert "READY=1" in text
    assert text.count("WATCHDOG=1") >= 2
    assert "STATUS=streaming: " + pages.url("/color/445566") in text
    assert "STOPPING=1" in text
    assert text.index("READY=1") < text.index("STOPPING=1")
