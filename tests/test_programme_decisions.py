"""The supervisor following the programme (castd/supervisor/director.py) with fake children and a fake
clock (tests/fakechild.py): playlists as page switches of one child in one session, an interrupt's
return, a schedule window starting and ending a session, a resumed session keeping its id. Milliseconds;
test_programme_live.py shows the same with Chromium."""

from datetime import datetime, timezone

from castd.protocol import Navigate, Start, Stop
from fakechild import FakeClock, Rig

BOARDS = [{"name": n, "url": f"http://a.example/{n}"} for n in ("red", "green", "blue", "cam")]
PLAYLIST = [{"name": "rgb", "items": [{"dashboard": n, "seconds": 10} for n in ("red", "green", "blue")]}]


def navigated(rig: Rig) -> list[str]:
    """The page names the child was told to switch to, in order."""
    return [n.url.rsplit("/", 1)[1] for n in rig.encoder.of(Navigate)]


def config(**more):
    return {"dashboards": BOARDS, "playlists": PLAYLIST, **more}


def test_a_playlist_is_page_switches_of_one_child_in_one_session(tmp_path):
    rig = Rig(tmp_path, **config())
    rig.send(Start(id="c1", url="", quality="720p", playlist="rgb"))
    rig.step()
    rig.stream()
    session = rig.acks[0].session
    assert rig.encoders[0].params.url.endswith("/red") and rig.status.item == 0
    rig.run(40.0)
    assert navigated(rig) == ["green", "blue", "red", "green"]
    assert len(rig.encoders) == 1 and rig.status.session == session and rig.status.playlist == "rgb"
    assert rig.status.next_switch_at == rig.clock.wall() + 10.0


def test_an_interrupt_switches_back_to_the_same_item(tmp_path):
    rig = Rig(tmp_path, **config())
    rig.send(Start(id="c1", url="", quality="720p", playlist="rgb"))
    rig.step()
    rig.stream()
    rig.run(12.0)  # green, 8 s left
    rig.send(Start(id="c2", url="http://a.example/cam", quality="720p", dashboard="cam", duration=30.0,
                   then="resume"))
    rig.step()
    assert rig.acks[-1].switched and rig.acks[-1].dashboard == "cam" and rig.status.interrupts == 1
    rig.run(30.0)
    assert navigated(rig) == ["green", "cam", "green"]
    assert rig.status.dashboard == "green" and rig.status.interrupts == 0
    assert rig.status.next_switch_at == rig.clock.wall() + 8.0
    assert len(rig.encoders) == 1


def test_a_schedule_window_starts_and_ends_a_session(tmp_path):
    wall = datetime.fromtimestamp(FakeClock().wall(), timezone.utc)
    start, end = wall.replace(second=0).timestamp() + 60, wall.replace(second=0).timestamp() + 180
    at = datetime.fromtimestamp
    rig = Rig(tmp_path, **config(schedules=[{"start": f"{at(start, timezone.utc):%H:%M}",
                                             "end": f"{at(end, timezone.utc):%H:%M}", "timezone": "UTC",
                                             "dashboard": "blue"}]))
    rig.step()
    assert rig.status.state == "idle" and not rig.encoders
    rig.step(seconds=start - rig.clock.wall())
    assert rig.encoders and rig.encoders[0].params.url.endswith("/blue")
    assert rig.status.source == "schedule" and rig.status.ends_at == end
    rig.stream()
    rig.run(end - rig.clock.wall() - 1)
    assert rig.status.state == "streaming"
    rig.step(seconds=1.0)
    rig.step()
    assert rig.status.state == "idle"


def test_a_restart_resumes_the_same_session_at_the_same_item(tmp_path):
    state = {"state_dir": str(tmp_path / "state")}
    rig = Rig(tmp_path, **config(**state))
    rig.send(Start(id="c1", url="", quality="720p", playlist="rgb"))
    rig.step()
    rig.stream()
    rig.run(15.0)  # green
    session = rig.status.session
    again = Rig(tmp_path, **config(**state))  # a new supervisor on the same state dir
    again.clock.advance(16.0)
    again.step()
    assert again.status.session == session and again.status.dashboard == "green"
    assert again.encoders[0].params.session == session and again.encoders[0].params.url.endswith("/green")
    again.send(Stop(id="s"))
    again.step()
    third = Rig(tmp_path, **config(**state))
    third.step()
    assert third.status.state == "idle" and not third.encoders  # a stop is kept too


def test_sharing_keys_reach_the_cast_worker_nearest_layer_first(tmp_path):
    """castd/sharing.py's layers: the start's keys over the dashboard's; a schedule entry's over its
    dashboard's (the config's own keys are applied by the link, under all of them)."""
    from castd.cast.messages import CastWant
    from castd.sharing import Sharing

    wall = datetime.fromtimestamp(FakeClock().wall(), timezone.utc)
    start, end = wall.replace(second=0).timestamp() + 60, wall.replace(second=0).timestamp() + 180
    at = datetime.fromtimestamp
    boards = [{**b, "takeover": "when-idle", "volume": 40} if b["name"] == "cam" else b for b in BOARDS]
    rig = Rig(tmp_path, dashboards=boards, playlists=PLAYLIST, schedules=[{
        "start": f"{at(start, timezone.utc):%H:%M}", "end": f"{at(end, timezone.utc):%H:%M}", "timezone": "UTC",
        "dashboard": "cam", "sticky": True, "device": "127.0.0.1:9"}], sticky=False)
    from castd.api.control import resolve_target, start_command
    from castd.api.schemas import StartRequest

    body = StartRequest(dashboard="cam", device="127.0.0.1:8", takeover="always", mute=True)  # as POST /start reads it
    rig.send(start_command(body, resolve_target(body, rig.config, None), rig.config))  # type: ignore[arg-type]
    rig.step()
    (want,) = rig.workers[0].of(CastWant)
    assert want.sharing == Sharing(takeover="always", volume=40, mute=True)
    rig.send(Stop(id="c2"))
    rig.step()
    rig.step(seconds=start - rig.clock.wall())
    scheduled = [w for w in rig.workers[-1].of(CastWant) if w.devices[0].spec == "127.0.0.1:9"]
    assert scheduled and scheduled[-1].sharing == Sharing(takeover="when-idle", sticky=True, volume=40)
