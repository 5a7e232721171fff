"""Config: defaults < TOML file < CASTD_* environment; bad values stop start-up with one clear line."""

import os
import subprocess
import sys

import pytest

from castd.config import Config, ConfigError, load_config, unknown_env


def test_precedence_defaults_file_env(tmp_path):
    file = tmp_path / "castd.toml"
    file.write_text('port = 9000\nquality = "1080p"\nhost = "127.0.0.2"\n')
    config = load_config(file, environ={"CASTD_PORT": "9100"})
    assert config.port == 9100  # env beats file
    assert config.quality == "1080p"  # file beats default
    assert config.host == "127.0.0.2"
    assert config.chromedriver == Config().chromedriver  # default kept
    assert load_config(file, environ={}, overrides={"port": 9200}).port == 9200  # CLI beats all


@pytest.mark.parametrize("environ, key", [
    ({"CASTD_PORT": "eighty"}, "port"),
    ({"CASTD_PORT": "70000"}, "port"),
    ({"CASTD_QUALITY": "4k"}, "quality"),
    ({"CASTD_MAX_DURATION": "-5"}, "max_duration"),
    ({"CASTD_LOG_LEVEL": "LOUD"}, "log_level"),
    ({"CASTD_CAST_STALL_SECONDS": "-1"}, "cast_stall_seconds"),
    ({"CASTD_CAST_STALL_SECONDS": "601"}, "cast_stall_seconds"),
    # the security settings (test_security.py holds what they do)
    ({"CASTD_TOKEN": "short"}, "token"),
    ({"CASTD_TOKEN": "has spaces in it, sixteen+"}, "token"),
    ({"CASTD_ALLOWLIST": "https://ok.example/,javascript:x"}, "allowlist"),
    ({"CASTD_ALLOWLIST": "https://*.example/"}, "allowlist"),
    ({"CASTD_RATE_LIMIT_BURST": "0"}, "rate_limit_burst"),
    ({"CASTD_RATE_LIMIT_PER_MINUTE": "0"}, "rate_limit_per_minute"),
    ({"CASTD_MAX_BODY_BYTES": "1000000"}, "max_body_bytes"),
    ({"CASTD_MAX_JSON_DEPTH": "1"}, "max_json_depth"),
    # sharing the TV (castd/sharing.py)
    ({"CASTD_TAKEOVER": "never"}, "takeover"),
    ({"CASTD_VOLUME": "101"}, "volume"),
    ({"CASTD_STICKY": "maybe"}, "sticky"),
    # the stream's shape (castd/presets.py STREAM_FORMATS)
    ({"CASTD_STREAM_FORMAT": "dash"}, "stream_format"),
])
def test_invalid_values_name_the_key(tmp_path, environ, key):
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    with pytest.raises(ConfigError) as info:
        load_config(empty, environ=environ)
    assert str(info.value).startswith(f"{key}:")
    if key == "token":
        assert environ["CASTD_TOKEN"] not in str(info.value)  # a rejected token is still not printed


def test_unknown_key_and_bad_toml(tmp_path):
    file = tmp_path / "castd.toml"
    file.write_text("prot = 1\n")
    with pytest.raises(ConfigError, match="^prot: unknown key"):
        load_config(file, environ={})
    file.write_text("port = = 1\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(file, environ={})
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.toml", environ={})


def test_cli_exits_2_with_one_line(tmp_path):
    file = tmp_path / "castd.toml"
    file.write_text('quality = "8k"\n')
    result = subprocess.run([sys.executable, "-m", "castd", "serve", "--config", str(file)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "quality" in lines[0] and "8k" in lines[0], result.stderr


def test_a_mistyped_key_gets_a_did_you_mean(tmp_path):
    file = tmp_path / "castd.toml"
    file.write_text('qualty = "1080p"\n[mqtt]\nhots = "broker"\n')
    with pytest.raises(ConfigError, match="^qualty: unknown key; did you mean quality\\?"):
        load_config(file, environ={})
    file.write_text('[mqtt]\nhots = "broker"\n')
    with pytest.raises(ConfigError, match="^mqtt.hots: unknown key; did you mean host\\?"):
        load_config(file, environ={})


def test_a_quoted_number_in_the_file_is_an_error(tmp_path):
    file = tmp_path / "castd.toml"
    file.write_text('port = "8762"\n')
    with pytest.raises(ConfigError, match="^port: Expected `int`, got `str` \\(write it without quotes\\)"):
        load_config(file, environ={})
    file.write_text("rate_limit_per_minute = 12\n")  # an integer where a float is wanted is fine
    assert load_config(file, environ={}).rate_limit_per_minute == 12.0


def test_an_environment_error_names_the_variable(tmp_path):
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    with pytest.raises(ConfigError, match="^port: .*\\(set by CASTD_PORT\\)$"):
        load_config(empty, environ={"CASTD_PORT": "abc"})
    with pytest.raises(ConfigError, match="^port: must be between 1 and 65535 \\(set by CASTD_PORT\\)$"):
        load_config(empty, environ={"CASTD_PORT": "70000"})
    with pytest.raises(ConfigError, match="^mqtt.port: .*\\(set by CASTD_MQTT_PORT\\)$"):
        load_config(empty, environ={"CASTD_MQTT_PORT": "x"})
    assert load_config(empty, environ={"CASTD_PORT": "9001"}).port == 9001


def test_a_url_without_a_scheme_says_add_http(tmp_path):
    file = tmp_path / "castd.toml"
    file.write_text('[[dashboards]]\nname = "ha"\nurl = "homeassistant.local:8123/lovelace/0"\n')
    with pytest.raises(ConfigError) as info:
        load_config(file, environ={})
    assert "add http:// or https://" in str(info.value) and "is not allowed" not in str(info.value)


def test_unknown_castd_variables_are_reported_with_a_suggestion():
    found = unknown_env({"CASTD_QUALTY": "1080p", "CASTD_PORT": "1", "CASTD_CONFIG": "/x", "CASTD_MQTT_HOST": "b",
                         "PATH": "/bin"})
    assert found == ["CASTD_QUALTY is not a castd setting; it is ignored (did you mean CASTD_QUALITY?)"]


def test_serve_warns_about_an_unknown_castd_variable_at_start_up(tmp_path):
    """The warning is the daemon's first lines; castd stops at once here (a bad port), so no server runs."""
    env = {**os.environ, "CASTD_QUALTY": "1080p", "CASTD_RUNTIME_DIR": str(tmp_path / "run")}
    result = subprocess.run([sys.executable, "-m", "castd", "serve", "--port", "1", "--host", "192.0.2.1",
                             "--insecure"], capture_output=True, text=True, timeout=60, env=env)
    assert "CASTD_QUALTY is not a castd setting" in result.stderr, result.stderr
    assert "did you mean CASTD_QUALITY?" in result.stderr


def test_sharing_keys_in_the_file_the_environment_and_the_tables(tmp_path):
    file = tmp_path / "castd.toml"
    file.write_text('takeover = "when-idle"\nvolume = 25\n[[dashboards]]\nname = "hall"\nurl = "http://a.example/"\n'
                    'sticky = true\nwake = false\n[[schedules]]\nstart = "07:00"\nend = "08:00"\n'
                    'dashboard = "hall"\nsilent_start = true\n')
    config = load_config(file, environ={"CASTD_RESTORE_VOLUME": "true"})
    assert (config.takeover, config.volume, config.restore_volume, config.sticky) == ("when-idle", 25, True, False)
    assert config.dashboards[0].sharing().sticky is True and config.dashboards[0].wake is False
    assert config.schedules[0].silent_start is True
    file.write_text('[[dashboards]]\nname = "hall"\nurl = "http://a.example/"\nvolume = -1\n')
    with pytest.raises(ConfigError, match="volume"):
        load_config(file, environ={})


def test_a_tvs_table_gives_one_tv_its_sharing_keys_by_any_of_its_names(tmp_path):
    from castd.sharing import Sharing

    file = tmp_path / "castd.toml"
    file.write_text('sticky = true\n[[tvs]]\ndevice = "Living Room TV"\ntakeover = "when-idle"\nvolume = 30\n'
                    '[[tvs]]\ndevice = "192.168.1.30:8009"\nwake = false\n')
    config = load_config(file, environ={})
    living = config.tv_sharing("living room tv")
    assert (living.takeover, living.volume, living.sticky, living.wake) == ("when-idle", 30, True, True)
    assert config.tv_sharing("Kitchen", "192.168.1.30:8009").wake is False  # by its address once found
    assert config.tv_sharing("Kitchen") == config.sharing()
    assert Sharing(takeover="always").over(living).takeover == "always"  # a start still wins
    file.write_text('[[tvs]]\ndevice = ""\n')
    with pytest.raises(ConfigError, match="tvs"):
        load_config(file, environ={})
