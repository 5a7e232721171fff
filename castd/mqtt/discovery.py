"""castd's Home Assistant device: one device-based discovery message (Home Assistant 2024.11+).

Published retained on `<prefix>/device/<node_id>/config`; Home Assistant then shows one device with
every entity below, and no YAML. Keys use Home Assistant's documented abbreviations (`dev`, `o`,
`cmps`, `p`, `uniq_id`, `stat_t`, `cmd_t`, `val_tpl`, ...): the message stays small enough for a
broker's default limits and is what the docs' examples show. Every entity reads the one retained
`<base>/state` JSON through a value template, so a state change is one message for all of them.
An empty retained payload on the same topic removes the device (`castd mqtt-forget`).

Entity ids are `castd_<node_id>_<component>`: unique per castd on a broker, stable across restarts,
so a fleet of castd instances on one broker appears as one device each.
"""

from __future__ import annotations

import json
from typing import Any, get_args

from castd.mqtt.settings import MqttSettings
from castd.protocol import State
from castd.mqtt.topics import Topics

STATES = list(get_args(State))  # the states /status reports, defined once in castd/protocol.py
TEXT_MAX = 255  # Home Assistant's text entity holds at most 255 characters


def device_id(topics: Topics) -> str:
    return f"castd_{topics.node_id}"


def component_key(spec: str) -> str:
    """A cast device spec ("Living Room TV", "192.168.1.30:8009") as a component id ([a-z0-9_])."""
    key = "".join(c if c.isascii() and c.isalnum() else "_" for c in spec.lower()).strip("_")
    return "_".join(part for part in key.split("_") if part)[:40] or "device"


def discovery_payload(settings: MqttSettings, topics: Topics, *, version: str, configuration_url: str,
                      options: list[str], select_name: str, devices: list[str],
                      cameras: list[str] | None = None) -> dict[str, Any]:
    """The discovery message. `options`: the select's choices (dashboards, else recent URLs);
    `devices`: the configured Cast devices, one sensor each; `cameras`: the [cameras.NAME] names (a
    select that puts one full screen)."""
    uid = device_id(topics)
    state = topics.state
    cmps: dict[str, dict[str, Any]] = {
        "state": {"p": "sensor", "name": "State", "stat_t": state, "val_tpl": "{{ value_json.state }}",
                  "dev_cla": "enum", "ops": STATES, "ic": "mdi:cast"},
        "casting": {"p": "binary_sensor", "name": "Casting", "stat_t": state, "dev_cla": "running",
                    "val_tpl": "{{ 'ON' if value_json.casting else 'OFF' }}"},
        "page_host": {"p": "sensor", "name": "Page host", "stat_t": state, "ic": "mdi:web",
                      "val_tpl": "{{ value_json.url_host if value_json.url_host else 'None' }}"},
        "fps": {"p": "sensor", "name": "Frame rate", "stat_t": state, "unit_of_meas": "fps",
                "stat_cla": "measurement", "suggested_display_precision": 1, "val_tpl": "{{ value_json.fps }}"},
        "restarts": {"p": "sensor", "name": "Encoder restarts", "stat_t": state, "stat_cla": "measurement",
                     "ent_cat": "diagnostic", "ic": "mdi:restart", "val_tpl": "{{ value_json.restarts }}"},
        "cast": {"p": "sensor", "name": "Cast devices", "stat_t": state, "ic": "mdi:television",
                 "val_tpl": "{{ value_json.cast_states.values() | join(', ') if value_json.cast_states "
                            "else 'None' }}",
                 "json_attr_t": state, "json_attr_tpl": "{{ value_json.cast_states | tojson }}"},
        "snapshot": {"p": "image", "name": "Picture", "img_t": topics.snapshot, "cont_type": "image/jpeg"},
    }
    taken = set(cmps)
    for spec in devices:
        key = f"cast_{component_key(spec)}"
        while key in taken:
            key += "_"
        taken.add(key)
        cmps[key] = {"p": "sensor", "name": f"Cast {spec}", "stat_t": state, "ic": "mdi:cast-connected",
                     "val_tpl": "{{ value_json.cast_states.get(%s, 'idle') }}" % json.dumps(spec)}
    if settings.accepts_control():
        cmps.update({
            "stop": {"p": "button", "name": "Stop", "cmd_t": topics.stop, "pl_prs": "{}", "ic": "mdi:stop"},
            "reload": {"p": "button", "name": "Reload page", "cmd_t": topics.reload, "pl_prs": "{}",
                       "ic": "mdi:reload"},
            "url": {"p": "text", "name": "URL", "cmd_t": topics.url_set, "stat_t": state, "max": TEXT_MAX,
                    "ic": "mdi:web", "val_tpl": "{{ (value_json.url or '')[:%d] }}" % TEXT_MAX},
            "select": {"p": "select", "name": select_name, "cmd_t": topics.select_set, "stat_t": state,
                       "ops": options, "ic": "mdi:view-dashboard",
                       "val_tpl": "{{ value_json.selected if value_json.selected else 'None' }}"},
            # settings for the starts made from Home Assistant (retained: they outlive castd's restarts)
            "takeover": {"p": "switch", "name": "Only when the TV is free", "cmd_t": topics.takeover_set,
                         "stat_t": state, "ret": True, "ent_cat": "config", "ic": "mdi:television-pause",
                         "val_tpl": "{{ 'ON' if value_json.takeover == 'when-idle' else 'OFF' }}"},
            "volume": {"p": "number", "name": "Cast volume", "cmd_t": topics.volume_set, "stat_t": state,
                       "min": 0, "max": 100, "step": 1, "unit_of_meas": "%", "ret": True, "ent_cat": "config",
                       "ic": "mdi:volume-high", "val_tpl": "{{ value_json.volume if value_json.volume is not none "
                                                           "else 'None' }}"},
        })
    if settings.accepts_control() and cameras:
        cmps["camera"] = {"p": "select", "name": "Camera", "cmd_t": topics.camera_set, "stat_t": state,
                          "ops": ["None", *cameras], "ic": "mdi:cctv",
                          "val_tpl": "{{ value_json.url[7:] if (value_json.url or '').startswith('camera:') "
                                     "else 'None' }}"}
    for key, component in cmps.items():
        component["uniq_id"] = f"{uid}_{key}"
    return {
        "dev": {"ids": [uid], "name": settings.resolved_name(), "mf": "castd", "mdl": "castd",
                "sw": version, "cu": configuration_url},
        "o": {"name": "castd", "sw": version},
        "avty_t": topics.availability,
        "qos": 1,
        "cmps": cmps,
    }
