"""The programme's decisions (castd/programme/) with an injected clock: schedules over DST in
Europe/Berlin and America/New_York, overlaps, midnight, clock jumps; playlists; interrupts; the
manual override; the state a restart brings back. No daemon, no sleeping: milliseconds."""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import msgspec
import pytest

from castd.config import Config, ConfigError, load_config
from castd.programme import schedule
from castd.programme.playlist import Cursor, advance, next_switch
from castd.programme.programme import Programme, State, restore
from castd.programme.targets import UnknownName, dashboard_target, playlist_target

BERLIN, NEW_YORK = ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")


def at(zone, *fields) -> float:
    return datetime(*fields, tzinfo=zone).timestamp()


def config(**values) -> Config:
    base = {"dashboards": [{"name": n, "url": f"http://127.0.0.1:9/{n}"} for n in ("red", "green", "blue", "cam")],
            "playlists": [{"name": "rgb", "items": [{"dashboard": "red", "seconds": 10},
                                                    {"dashboard": "green", "seconds": 20},
                                                    {"dashboard": "blue", "seconds": 30}]}]}
    return msgspec.convert({**base, **values}, Config)


def entry(start, end, zone="Europe/Berlin", days=(), **what):
    return {"start": start, "end": end, "timezone": zone, "days": list(days), **(what or {"dashboard": "red"})}


# ---- schedule windows over DST ---------------------------------------------------------------
@pytest.mark.parametrize("zone, spring, autumn", [
    (BERLIN, (2026, 3, 29), (2026, 10, 25)),
    (NEW_YORK, (2026, 3, 8), (2026, 11, 1)),
])
def test_a_window_keeps_its_wall_clock_time_across_dst(zone, spring, autumn):
    entries = config(schedules=[entry("07:00", "09:00", zone.key)]).schedules
    for day in (spring, autumn):
        for offset in (-1, 0, 1):
            local = date(*day) + timedelta(days=offset)
            start = datetime(local.year, local.month, local.day, 7, 0, tzinfo=zone).timestamp()
            window = schedule.active(entries, start + 1)
            assert window is not None and window.start == start and window.end - window.start == 2 * 3600
            assert schedule.active(entries, start - 1) is None
    # UTC moves by an hour between winter and summer: the wall clock does not
    winter = schedule.active(entries, at(zone, 2026, 1, 15, 7, 30))
    summer = schedule.active(entries, at(zone, 2026, 7, 15, 7, 30))
    assert datetime.fromtimestamp(winter.start, zone).hour == datetime.fromtimestamp(summer.start, zone).hour == 7
    assert (winter.start % 86400) - (summer.start % 86400) == 3600


@pytest.mark.parametrize("zone, spring, autumn", [
    (BERLIN, (2026, 3, 29), (2026, 10, 25)),
    (NEW_YORK, (2026, 3, 8), (2026, 11, 1)),
])
def test_a_night_window_over_the_change_is_as_long_as_the_wall_clock_says(zone, spring, autumn):
    entries = config(schedules=[entry("01:00", "04:00", zone.key)]).schedules
    short = schedule.active(entries, at(zone, *spring, 1, 30))
    long = schedule.active(entries, at(zone, *autumn, 1, 30))
    assert short.end - short.start == 2 * 3600  # the clocks skip an hour
    assert long.end - long.start == 4 * 3600  # the clocks repeat an hour


def test_a_start_in_the_skipped_hour_is_read_as_summer_time():
    entries = config(schedules=[entry("02:30", "05:00")]).schedules
    window = schedule.active(entries, at(BERLIN, 2026, 3, 29, 4, 0))
    assert datetime.fromtimestamp(window.start, BERLIN).strftime("%H:%M %Z") == "03:30 CEST"
    inside = config(schedules=[entry("02:15", "02:45")]).schedules  # the whole window is in the gap: an hour on
    window = schedule.active(inside, at(BERLIN, 2026, 3, 29, 3, 20))
    assert datetime.fromtimestamp(window.start, BERLIN).strftime("%H:%M") == "03:15"
    assert window.end - window.start == 1800
    gone = config(schedules=[entry("02:30", "03:00")]).schedules  # 03:30 CEST to 03:00 CEST: nothing left
    night = at(BERLIN, 2026, 3, 29, 0)
    assert [w for w in schedule.windows(gone, night) if night <= w.start < night + 86400] == []


def test_midnight_wrap_and_days_belong_to_the_start():
    entries = config(schedules=[entry("22:00", "02:00", days=["fri"])]).schedules  # 2026-12-04 is a Friday
    assert schedule.active(entries, at(BERLIN, 2026, 12, 4, 23, 0)) is not None
    assert schedule.active(entries, at(BERLIN, 2026, 12, 5, 1, 59)) is not None  # Saturday night, Friday's
    assert schedule.active(entries, at(BERLIN, 2026, 12, 5, 2, 0)) is None
    assert schedule.active(entries, at(BERLIN, 2026, 12, 5, 23, 0)) is None  # not on Saturday
    assert schedule.active(entries, at(BERLIN, 2026, 12, 3, 23, 0)) is None  # nor Thursday


def test_weekdays_and_weekend_groups():
    entries = config(schedules=[entry("07:00", "08:00", days=["weekdays"])]).schedules
    on = [d for d in range(1, 8) if schedule.active(entries, at(BERLIN, 2026, 6, d, 7, 30))]
    assert [datetime(2026, 6, d).strftime("%a") for d in on] == ["Mon", "Tue", "Wed", "Thu", "Fri"]


def test_overlap_the_later_starting_entry_wins_then_gives_back():
    c = config(schedules=[entry("08:00", "12:00", dashboard="red"), entry("09:00", "10:00", dashboard="blue")])
    programme = Programme(c)
    assert programme.decide(at(BERLIN, 2026, 6, 1, 8, 30)).dashboard == "red"
    assert programme.decide(at(BERLIN, 2026, 6, 1, 9, 30)).dashboard == "blue"
    assert programme.decide(at(BERLIN, 2026, 6, 1, 10, 30)).dashboard == "red"
    assert programme.decide(at(BERLIN, 2026, 6, 1, 12, 0)) is None
    # listed first but starting later still wins
    c2 = config(schedules=[entry("09:00", "10:00", dashboard="blue"), entry("08:00", "12:00", dashboard="red")])
    assert Programme(c2).decide(at(BERLIN, 2026, 6, 1, 9, 30)).dashboard == "blue"


def test_clock_jumps_give_the_answer_for_the_new_time():
    c = config(schedules=[entry("08:00", "09:00", dashboard="red"), entry("10:00", "11:00", dashboard="blue")])
    programme = Programme(c)
    assert programme.decide(at(BERLIN, 2026, 6, 1, 8, 30)).dashboard == "red"
    assert programme.decide(at(BERLIN, 2026, 6, 1, 10, 30)).dashboard == "blue"  # jumped over a boundary
    assert programme.decide(at(BERLIN, 2026, 6, 1, 8, 45)).dashboard == "red"  # and back
    assert programme.decide(at(BERLIN, 2026, 6, 3, 9, 30)) is None  # two days on, between windows
    assert programme.decide(at(BERLIN, 2026, 6, 3, 10, 0)).dashboard == "blue"


def test_next_boundary_is_the_next_start_or_end():
    c = config(schedules=[entry("08:00", "09:00")])
    now = at(BERLIN, 2026, 6, 1, 7, 0)
    assert schedule.next_boundary(c.schedules, now) == at(BERLIN, 2026, 6, 1, 8, 0)
    assert schedule.next_boundary(c.schedules, at(BERLIN, 2026, 6, 1, 8, 0)) == at(BERLIN, 2026, 6, 1, 9, 0)
    assert Programme(c).next_change(now) == at(BERLIN, 2026, 6, 1, 8, 0)


# ---- playlists ---------------------------------------------------------------------------------
def test_a_playlist_rotates_in_one_session_and_loops():
    c, t0 = config(), 1_000_000.0
    programme = Programme(c)
    programme.start(playlist_target(c, "rgb"), t0)
    shows = [programme.decide(t0 + dt) for dt in (0, 9.9, 10, 30, 59.9, 60)]
    seen = [(s.dashboard, s.item, s.next_switch_at) for s in shows]
    assert seen == [("red", 0, t0 + 10), ("red", 0, t0 + 10), ("green", 1, t0 + 30), ("blue", 2, t0 + 60),
                    ("blue", 2, t0 + 60), ("red", 0, t0 + 70)]
    keys = {programme.decide(t0 + dt).session_key for dt in range(0, 200, 5)}
    assert len(keys) == 1  # quality, mode and devices never change: page switches only


def test_a_once_playlist_ends_after_its_last_item():
    c, t0 = config(playlists=[{"name": "once", "loop": False, "items": [{"dashboard": "red", "seconds": 5},
                                                                      {"dashboard": "blue", "seconds": 5}]}]), 0.0
    programme = Programme(c)
    programme.start(playlist_target(c, "once"), t0)
    assert programme.decide(7).dashboard == "blue"
    assert programme.decide(10) is None


def test_next_and_previous_step_with_a_full_item_time():
    c, t0 = config(), 0.0
    programme = Programme(c)
    assert programme.step(1, t0) is False  # nothing on
    programme.start(playlist_target(c, "rgb"), t0)
    assert programme.step(1, 3) and programme.decide(3).dashboard == "green"
    assert programme.decide(3).next_switch_at == 23
    assert programme.step(-1, 4) and programme.step(-1, 4) and programme.decide(4).dashboard == "blue"
    programme.start(dashboard_target(c, "cam"), 5)
    assert programme.step(1, 5) is False  # a single dashboard has no next


def test_next_during_an_interrupt_says_why_the_playlist_does_not_step():
    c = config()
    programme = Programme(c)
    assert programme.why_no_step(0) == "no playlist is on screen"
    programme.start(playlist_target(c, "rgb"), 0)
    programme.start(dashboard_target(c, "cam"), 5, duration=60, then="resume")
    assert programme.step(1, 8) is False  # the playlist is paused underneath: stepping it unseen moves nothing
    assert programme.why_no_step(8) == ("an interrupt is on screen (cam); the playlist rgb is paused underneath "
                                        "and comes back in 57 s: step it then")
    assert programme.decide(65).playlist == "rgb" and programme.step(1, 65)


def test_a_clock_jump_does_not_replay_every_item():
    cursor, durations = Cursor(since=0.0), [10.0, 20.0, 30.0]
    advance(cursor, durations, True, 10 * 365 * 86400 + 15)  # ten years on: arithmetic, not a loop of items
    assert cursor.index in (0, 1, 2) and cursor.since <= 10 * 365 * 86400 + 15 < next_switch(cursor, durations)
    advance(cursor, durations, True, 5.0)  # back in time: the item starts again
    assert cursor.since == 5.0


# ---- interrupts and overrides ------------------------------------------------------------------
def test_an_interrupt_returns_to_the_same_item_with_its_time_left():
    c, t0 = config(), 0.0
    programme = Programme(c)
    programme.start(playlist_target(c, "rgb"), t0)
    assert programme.decide(15).dashboard == "green"  # 15 s left of green's 20
    programme.start(dashboard_target(c, "cam"), 15, duration=60, then="resume")
    shown = programme.decide(40)
    assert shown.dashboard == "cam" and shown.source == "interrupt" and shown.ends_at == 75
    back = programme.decide(75)
    assert back.dashboard == "green" and back.item == 1 and back.next_switch_at == 90


def test_nested_interrupts_end_newest_first():
    c = config()
    programme = Programme(c)
    programme.start(dashboard_target(c, "red"), 0)
    programme.start(dashboard_target(c, "green"), 10, duration=100, then="resume")
    programme.start(dashboard_target(c, "blue"), 20, duration=30, then="resume")
    assert [programme.decide(t).dashboard for t in (25, 50, 109, 110)] == ["blue", "green", "green", "red"]
    # an outer one that ended under a newer one is not shown again
    programme.start(dashboard_target(c, "green"), 200, duration=10, then="resume")
    programme.start(dashboard_target(c, "blue"), 201, duration=30, then="resume")
    assert [programme.decide(t).dashboard for t in (205, 231)] == ["blue", "red"]


def test_a_plain_start_replaces_interrupts_and_a_stop_ends_everything():
    c = config()
    programme = Programme(c)
    programme.start(dashboard_target(c, "red"), 0)
    programme.start(dashboard_target(c, "green"), 1, duration=100, then="resume")
    programme.start(dashboard_target(c, "blue"), 2)
    assert programme.decide(3).dashboard == "blue" and not programme.state.interrupts
    programme.stop(4)
    assert programme.decide(5) is None


def test_an_interrupt_over_a_schedule_returns_to_the_current_entry():
    c = config(schedules=[entry("08:00", "09:00", dashboard="red"), entry("09:00", "10:00", dashboard="blue")])
    programme = Programme(c)
    programme.start(dashboard_target(c, "cam"), at(BERLIN, 2026, 6, 1, 8, 59), duration=120, then="resume")
    assert programme.decide(at(BERLIN, 2026, 6, 1, 9, 0)).dashboard == "cam"
    assert programme.decide(at(BERLIN, 2026, 6, 1, 9, 1)).dashboard == "blue"


@pytest.mark.parametrize("override, at_nine", [("boundary", "blue"), ("session", "green")])
def test_a_manual_start_beats_the_schedule_as_configured(override, at_nine):
    c = config(schedule_override=override,
               schedules=[entry("08:00", "09:00", dashboard="red"), entry("09:00", "10:00", dashboard="blue")])
    programme = Programme(c)
    programme.start(dashboard_target(c, "green"), at(BERLIN, 2026, 6, 1, 8, 30))
    assert programme.decide(at(BERLIN, 2026, 6, 1, 8, 45)).dashboard == "green"
    assert programme.decide(at(BERLIN, 2026, 6, 1, 9, 0, 1)).dashboard == at_nine


def test_a_manual_session_that_ends_gives_the_screen_back_to_the_schedule():
    c = config(schedule_override="session", schedules=[entry("08:00", "10:00", dashboard="red")])
    programme = Programme(c)
    programme.start(dashboard_target(c, "green"), at(BERLIN, 2026, 6, 1, 8, 30), duration=600)
    assert programme.decide(at(BERLIN, 2026, 6, 1, 8, 39)).dashboard == "green"
    assert programme.decide(at(BERLIN, 2026, 6, 1, 8, 40)).dashboard == "red"
    assert programme.ended == "session duration reached"
    assert programme.decide(at(BERLIN, 2026, 6, 1, 10, 0)) is None and programme.ended == "schedule window ended"


def test_a_stop_keeps_the_current_window_off_until_the_next_boundary():
    c = config(schedules=[entry("08:00", "09:00", dashboard="red"), entry("09:00", "10:00", dashboard="blue")])
    programme = Programme(c)
    assert programme.decide(at(BERLIN, 2026, 6, 1, 8, 10)).dashboard == "red"
    programme.stop(at(BERLIN, 2026, 6, 1, 8, 10))
    assert programme.decide(at(BERLIN, 2026, 6, 1, 8, 30)) is None
    assert programme.decide(at(BERLIN, 2026, 6, 1, 9, 0)).dashboard == "blue"
    assert programme.decide(at(BERLIN, 2026, 6, 2, 8, 0)).dashboard == "red"  # the next day again


def test_a_scheduled_playlist_is_positioned_from_the_window_start():
    c = config(schedules=[entry("08:00", "09:00", playlist="rgb")])
    show = Programme(c).decide(at(BERLIN, 2026, 6, 1, 8, 0, 15))
    assert (show.dashboard, show.playlist, show.source, show.schedule) == ("green", "rgb", "schedule", "schedule 1")


# ---- the state a restart brings back -----------------------------------------------------------
def test_the_state_survives_encoding_and_continues_the_same_item():
    c = config()
    programme = Programme(c)
    programme.start(playlist_target(c, "rgb"), 0)
    programme.start(dashboard_target(c, "cam"), 15, duration=60, then="resume")
    programme.decide(20)
    saved = msgspec.json.encode(programme.state)
    again, problems = restore(c, msgspec.json.decode(saved, type=State), 23)
    assert not problems
    assert again.decide(23).dashboard == "cam"
    assert again.decide(75).dashboard == "green" and again.decide(75).next_switch_at == 90


def test_a_state_naming_a_playlist_no_longer_configured_is_dropped_with_a_reason():
    c = config()
    programme = Programme(c)
    programme.start(playlist_target(c, "rgb"), 0)
    smaller = config(playlists=[])
    again, problems = restore(smaller, msgspec.json.decode(msgspec.json.encode(programme.state), type=State), 1)
    assert again.decide(1) is None and "rgb" in problems[0]


def test_unknown_names_list_the_configured_ones():
    with pytest.raises(UnknownName, match="red, green, blue, cam"):
        dashboard_target(config(), "nope")
    with pytest.raises(UnknownName, match="rgb"):
        playlist_target(config(), "nope")


def test_config_errors_name_the_key(tmp_path):
    cases = {
        'schedules = [{start = "7", end = "9", dashboard = "x"}]': "schedules[0]: start",
        'schedules = [{start = "07:00", end = "07:00", dashboard = "x"}]': "schedules[0]: end",
        'schedules = [{start = "07:00", end = "09:00"}]': "either dashboard or playlist",
        'schedules = [{start = "07:00", end = "09:00", dashboard = "x", days = ["someday"]}]': "days",
        'schedules = [{start = "07:00", end = "09:00", dashboard = "nope"}]': "schedules[0].dashboard",
        'dashboards = [{name = "a", url = "http://x/"}, {name = "a", url = "http://y/"}]': "dashboards[1].name",
        'dashboards = [{name = "a", url = "file:///etc"}]': "dashboards[0]",
        'dashboards = [{name = "a", url = "http://x/", colour = 1}]': "dashboards[0]: colour: unknown key",
        'playlists = [{name = "p", items = []}]': "playlists[0]: items",
        'playlists = [{name = "p", items = [{dashboard = "x", seconds = 5}]}]': "playlists[0].items[0].dashboard",
        'playlists = [{name = "p", items = [{dashboard = "x", seconds = 0}]}]': "seconds",
        'schedule_override = "never"': "schedule_override",
    }
    for text, needle in cases.items():
        file = tmp_path / "c.toml"
        file.write_text(text)
        with pytest.raises(ConfigError, match=needle.replace("[", r"\[").replace("]", r"\]")):
            load_config(file, environ={})
