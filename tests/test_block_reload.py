"""Blocking playlist reload (stream format hls-fast-parts, RFC 8216bis 6.2.5.2; castd/api/blocking.py) on
the real daemon: a media playlist request with `_HLS_msn=N` (and `_HLS_part=P`, as Shaka's low-latency mode
asks) comes back once segment N (N + 1 for P >= 1: castd lists one partial segment per segment) is listed, a bad
directive is a clear 400 that changes nothing, and a segment that does not come within three target
durations is a 503 (the encoder stopped with SIGSTOP meanwhile), while the rest of the API answers.
Every playlist a held request returned obeys tests/hlsrules.py. Whether blocking helps a player at all
is bench.glass's question (bench/README.md, "Blocking reload", "hls-fast-parts")."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time

import httpx
import pytest
from helpers import Daemon, media_playlist_url, wait_for
from hlsrules import playlist_problems, reload_problems

from castd.api.blocking import BadDirective, PlaylistWatch, last_msn, requested_msn


@pytest.fixture(scope="module")
def castd(tmp_path_factory, pages):
    """A daemon in hls-fast-parts, streaming a solid page (left streaming)."""
    d = Daemon(runtime_dir=tmp_path_factory.mktemp("block") / "run",
               env_extra={"CASTD_STREAM_FORMAT": "hls-fast-parts"}).start()
    started = d.post("/start", json={"url": pages.url("/color/2060c0")})
    assert started.status_code == 200, started.text
    d.wait_state("streaming", 30)
    d.media = media_playlist_url(started.json()["stream_url"])
    yield d
    d.finish()


def listed(castd) -> tuple[int, str]:
    text = httpx.get(castd.media, timeout=10).text
    return last_msn(text), text


def test_the_directive_and_the_playlist_are_read_as_the_draft_says():
    assert requested_msn({}) is None and requested_msn({"_HLS_msn": "17"}) == 17
    assert requested_msn({"_HLS_msn": "17", "_HLS_part": "0"}) == 17  # part 0 of 17 is listed with 17
    assert requested_msn({"_HLS_msn": "17", "_HLS_part": "1"}) == 18  # a later part: with the next segment
    for bad in ({"_HLS_msn": "x"}, {"_HLS_msn": "-1"}, {"_HLS_msn": "1.5"}, {"_HLS_part": "0"},
                {"_HLS_msn": "17", "_HLS_part": "-1"}):
        with pytest.raises(BadDirective):
            requested_msn(bad)
    text = "#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:40\n#EXTINF:0.5,\nseg00040.ts\n#EXTINF:0.5,\nseg00041.ts\n"
    assert last_msn(text) == 41 and last_msn("#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:3\n") == -1


def test_the_watch_wakes_every_held_request_and_stops_polling_after(tmp_path):
    path = tmp_path / "stream.m3u8"
    path.write_text("#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:0.5,\nseg00000.ts\n")

    async def scenario():
        watch = PlaylistWatch()

        async def read():
            return path.read_text()

        held = [asyncio.create_task(watch.wait_listed(path, 1, read)) for _ in range(3)]
        await asyncio.sleep(0.05)  # the watch read the file (it lists 0 only): nobody may be answered yet
        assert watch.watching() == 1 and not any(t.done() for t in held)
        tmp = tmp_path / "new"
        tmp.write_text(path.read_text() + "#EXTINF:0.5,\nseg00001.ts\n")
        os.replace(tmp, path)  # as the encoder writes it
        texts = await asyncio.wait_for(asyncio.gather(*held), 2)
        assert all(last_msn(t) == 1 for t in texts)
        assert watch.watching() == 0  # no task left polling

    asyncio.run(scenario())


def test_a_held_reload_returns_once_its_segment_is_listed(castd):
    last, text = listed(castd)
    assert "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,HOLD-BACK=3.000,PART-HOLD-BACK=1.500" in text, text
    assert "#EXT-X-PART-INF:PART-TARGET=0.500" in text and "#EXT-X-PART:" in text, text
    assert httpx.get(castd.media, params={"_HLS_msn": str(last)}, timeout=10).status_code == 200  # listed: at once
    texts = [text]
    for i in range(6):  # as a player refreshes: always the next one, as Shaka asks with parts and without
        ask = {"_HLS_msn": str(last_msn(texts[-1]) + 1)} | ({"_HLS_part": "0"} if i % 2 else {})
        answer = httpx.get(castd.media, params=ask, timeout=10)
        assert answer.status_code == 200, answer.text
        assert last_msn(answer.text) >= last_msn(texts[-1]) + 1
        texts.append(answer.text)
    assert last_msn(texts[-1]) >= last + 6
    now = last_msn(texts[-1])  # a part after the only one of the newest segment: answered with the next segment
    answer = httpx.get(castd.media, params={"_HLS_msn": str(now), "_HLS_part": "1"}, timeout=10)
    assert answer.status_code == 200 and last_msn(answer.text) >= now + 1, answer.text
    texts.append(answer.text)
    problems = [p for t in texts for p in playlist_problems(t)] + reload_problems(texts)
    assert problems == [], problems[:5]


def test_a_bad_directive_is_a_clear_400_and_changes_nothing(castd):
    last, _ = listed(castd)
    for params, words in (({"_HLS_msn": "soon"}, "whole number"), ({"_HLS_msn": "-2"}, "whole number"),
                          ({"_HLS_msn": str(last + 50)}, "more than 2 past"),
                          ({"_HLS_part": "0"}, "without _HLS_msn"),
                          ({"_HLS_msn": str(last), "_HLS_part": "first"}, "whole number")):
        answer = httpx.get(castd.media, params=params, timeout=10)
        assert answer.status_code == 400, (params, answer.text)
        assert words in answer.json()["error"], answer.json()
    assert castd.status()["state"] == "streaming"
    wait_for(lambda: listed(castd)[0] > last, 10, message="the stream goes on")


def test_a_segment_not_listed_within_three_target_durations_is_a_503(castd):
    pid = castd.status()["encoder_pid"]
    os.kill(pid, signal.SIGSTOP)  # no segment is listed while it is stopped (the frame watchdog waits 6 s)
    try:
        time.sleep(0.3)  # a playlist write under way when it stopped is done or never happens
        last, _ = listed(castd)
        answers: list[httpx.Response] = []
        held = threading.Thread(target=lambda: answers.append(
            httpx.get(castd.media, params={"_HLS_msn": str(last + 1)}, timeout=10)))
        held.start()
        assert castd.get("/status").status_code == 200  # the event loop answers meanwhile
        assert held.is_alive()  # (its segment cannot come while the encoder is stopped)
        held.join(10)
    finally:
        os.kill(pid, signal.SIGCONT)
    assert answers and answers[0].status_code == 503, answers
    assert "within 3 s" in answers[0].json()["error"]
    answer = httpx.get(castd.media, params={"_HLS_msn": str(last + 1)}, timeout=10)  # and it goes on
    assert answer.status_code == 200 and last_msn(answer.text) >= last + 1
