"""Config: defaults < TOML file < CASTD_* environment; bad values stop start-up with one clear line."""

import subprocess
import sys

import pytest

from castd.config import Config, ConfigError, load_config


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
