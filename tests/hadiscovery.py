"""Home Assistant's MQTT device-discovery schema, written down from its documentation, as a checker.

Sources (home-assistant.io, integrations/mqtt and the per-platform pages sensor.mqtt, binary_sensor.mqtt,
button.mqtt, text.mqtt, select.mqtt, image.mqtt, number.mqtt, switch.mqtt):
- device-based discovery topic `<discovery_prefix>/device/<object_id>/config`, ids of [a-zA-Z0-9_-]+;
- the payload's shared options: `device` (`dev`) and `origin` (`o`) are required and cannot be set per
  component; availability options, `state_topic`, `command_topic`, `qos` and `encoding` may be shared;
  the components go under `components` (`cmps`), keyed by a component id;
- every component needs `platform` (`p`), and a `unique_id` for entity platforms;
- a device needs `identifiers` or `connections`; an origin needs `name`;
- configuration keys may be written with the documented abbreviations (below); unknown keys are
  silently ignored by Home Assistant, which is exactly why this checker refuses them (a typo would
  silently drop a feature);
- each platform's required options (sensor/binary_sensor: state_topic; button/text: command_topic;
  select: command_topic and options; image: exactly one of image_topic and url_topic);
- text: `max` at most 255.
"""

from __future__ import annotations

import re

ID = re.compile(r"^[a-zA-Z0-9_-]+$")

# the documented abbreviations this checker understands (a subset of the docs' list: the options of
# the platforms castd uses, and the shared ones)
ABBREVIATIONS = {
    "avty": "availability", "avty_mode": "availability_mode", "avty_t": "availability_topic",
    "avty_tpl": "availability_template", "cmd_t": "command_topic", "cmd_tpl": "command_template",
    "cmps": "components", "cont_type": "content_type", "def_ent_id": "default_entity_id", "dev": "device",
    "dev_cla": "device_class", "e": "encoding", "en": "enabled_by_default", "ent_cat": "entity_category",
    "ent_pic": "entity_picture", "exp_aft": "expire_after", "frc_upd": "force_update", "ic": "icon",
    "img_e": "image_encoding", "img_t": "image_topic", "json_attr_t": "json_attributes_topic",
    "json_attr_tpl": "json_attributes_template", "lrst_val_tpl": "last_reset_value_template",
    "max": "max", "min": "min", "mode": "mode", "name": "name", "o": "origin", "obj_id": "object_id",
    "off_dly": "off_delay", "ops": "options", "opt": "optimistic", "p": "platform", "pl_avail": "payload_available",
    "pl_not_avail": "payload_not_available", "pl_off": "payload_off", "pl_on": "payload_on",
    "pl_prs": "payload_press", "pl_rst": "payload_reset", "ptrn": "pattern", "step": "step",
    "stat_off": "state_off", "stat_on": "state_on", "qos": "qos", "ret": "retain", "stat_cla": "state_class",
    "stat_t": "state_topic", "sug_dsp_prc": "suggested_display_precision", "t": "topic",
    "uniq_id": "unique_id", "unit_of_meas": "unit_of_measurement", "url_t": "url_topic",
    "url_tpl": "url_template", "val_tpl": "value_template",
}
DEVICE_ABBREVIATIONS = {"cns": "connections", "cu": "configuration_url", "ids": "identifiers", "name": "name",
                        "mf": "manufacturer", "mdl": "model", "mdl_id": "model_id", "hw": "hw_version",
                        "sw": "sw_version", "sa": "suggested_area", "sn": "serial_number",
                        "via_device": "via_device"}
ORIGIN_ABBREVIATIONS = {"name": "name", "sw": "sw_version", "url": "support_url"}

SHARED = {"device", "origin", "components", "availability", "availability_mode", "availability_template",
          "availability_topic", "payload_available", "payload_not_available", "state_topic", "command_topic",
          "qos", "encoding"}
COMMON = {"availability", "availability_mode", "availability_template", "availability_topic",
          "payload_available", "payload_not_available", "enabled_by_default", "encoding", "entity_category",
          "entity_picture", "icon", "json_attributes_template", "json_attributes_topic", "name", "object_id",
          "default_entity_id", "platform", "qos", "unique_id"}
PLATFORMS = {
    "sensor": {"device_class", "expire_after", "force_update", "last_reset_value_template", "options",
               "state_class", "state_topic", "suggested_display_precision", "unit_of_measurement",
               "value_template"},
    "binary_sensor": {"device_class", "expire_after", "force_update", "off_delay", "payload_off", "payload_on",
                      "state_topic", "value_template"},
    "button": {"command_template", "command_topic", "device_class", "payload_press", "retain"},
    "text": {"command_template", "command_topic", "max", "min", "mode", "pattern", "retain", "state_topic",
             "value_template"},
    "select": {"command_template", "command_topic", "optimistic", "options", "retain", "state_topic",
               "value_template"},
    "image": {"content_type", "image_encoding", "image_topic", "url_template", "url_topic"},
    "number": {"command_template", "command_topic", "device_class", "max", "min", "mode", "optimistic",
               "payload_reset", "retain", "state_topic", "step", "unit_of_measurement", "value_template"},
    "switch": {"command_template", "command_topic", "device_class", "optimistic", "payload_off", "payload_on",
               "retain", "state_off", "state_on", "state_topic", "value_template"},
}
REQUIRED = {"sensor": {"state_topic"}, "binary_sensor": {"state_topic"}, "button": {"command_topic"},
            "text": {"command_topic"}, "select": {"command_topic", "options"}, "image": set(),
            "number": {"command_topic"}, "switch": {"command_topic"}}


def expand(mapping: dict, table: dict[str, str], where: str, problems: list[str]) -> dict:
    """Abbreviations to full names; a key that is neither is a problem, as is one given twice."""
    full_names = set(table.values())
    out = {}
    for key, value in mapping.items():
        name = table.get(key, key)
        if key not in table and key not in full_names:
            problems.append(f"{where}: unknown key {key!r}")
        if name in out:
            problems.append(f"{where}: {name!r} given twice")
        out[name] = value
    return out


def required_block(root: dict, key: str, short: str, table: dict[str, str], problems: list[str]) -> dict:
    """The root's `key` block (abbreviated `short`) with full names; its absence is a problem."""
    block = root.get(key)
    if not isinstance(block, dict):
        problems.append(f"root: {key} ({short}) is required")
        block = {}
    return expand(block, table, key, problems)


def check(topic: str, payload: dict, prefix: str = "homeassistant") -> tuple[list[str], dict]:
    """Problems with one device-discovery message (empty when it is valid), and the expanded payload."""
    problems: list[str] = []
    parts = topic.split("/")
    if len(parts) != 4 or parts[0] != prefix or parts[1] != "device" or parts[3] != "config" \
            or not ID.match(parts[2]):
        problems.append(f"topic {topic!r} is not {prefix}/device/<id>/config")
    root_full = set(ABBREVIATIONS.values()) | SHARED
    root = expand(payload, {**ABBREVIATIONS, **{k: k for k in SHARED}}, "root", problems)
    for key in root:
        if key not in SHARED and key in root_full:
            problems.append(f"root: {key!r} is not a shared option")
    device = required_block(root, "device", "dev", DEVICE_ABBREVIATIONS, problems)
    if not device.get("identifiers") and not device.get("connections"):
        problems.append("device: identifiers or connections required")
    url = device.get("configuration_url")
    if url is not None and not re.match(r"^(https?|homeassistant)://", url):
        problems.append(f"device: configuration_url {url!r} is not an http(s) URL")
    origin = required_block(root, "origin", "o", ORIGIN_ABBREVIATIONS, problems)
    if not origin.get("name"):
        problems.append("origin: name required")
    components = root.get("components")
    if not isinstance(components, dict) or not components:
        problems.append("root: components (cmps) required")
        components = {}
    expanded = {}
    unique_ids: set[str] = set()
    for cid, component in components.items():
        where = f"cmps.{cid}"
        if not ID.match(cid):
            problems.append(f"{where}: component id must be [a-zA-Z0-9_-]+")
        comp = expand(component, ABBREVIATIONS, where, problems)
        platform = comp.get("platform")
        if platform not in PLATFORMS:
            problems.append(f"{where}: platform {platform!r} is not one castd may use")
            continue
        for key in comp:
            if key not in COMMON | PLATFORMS[platform]:
                problems.append(f"{where}: {key!r} is not an option of the {platform} platform")
        if key_missing := (REQUIRED[platform] - set(comp) - (set(root) & {"state_topic", "command_topic"})):
            problems.append(f"{where}: {platform} needs {sorted(key_missing)}")
        if platform == "image" and ("image_topic" in comp) == ("url_topic" in comp):
            problems.append(f"{where}: an image needs exactly one of image_topic and url_topic")
        if platform == "text" and int(comp.get("max", 255)) > 255:
            problems.append(f"{where}: text max is at most 255")
        if platform in ("select", "sensor") and "options" in comp and not isinstance(comp["options"], list):
            problems.append(f"{where}: options must be a list")
        uid = comp.get("unique_id")
        if not uid:
            problems.append(f"{where}: unique_id required (device-based discovery)")
        elif uid in unique_ids:
            problems.append(f"{where}: unique_id {uid!r} used twice")
        else:
            unique_ids.add(uid)
        for key in ("device", "origin"):
            if key in comp:
                problems.append(f"{where}: {key} may only be set at the root")
        expanded[cid] = comp
    root["components"] = expanded
    root["device"], root["origin"] = device, origin
    return problems, root


def topics_of(component: dict) -> dict[str, str]:
    """The MQTT topics an expanded component names (option -> topic)."""
    return {k: v for k, v in component.items() if k.endswith("_topic")}
