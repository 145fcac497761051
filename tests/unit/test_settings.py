from __future__ import annotations

from pathlib import Path

import pytest

from smssync.errors import ConfigError
from smssync.settings import Secret, Settings


def test_defaults_use_sqlite_in_the_data_dir() -> None:
    settings = Settings.from_env({})
    assert settings.store_url == "sqlite:///smssync-data/smssync.db"
    assert settings.sync_url == "http://127.0.0.1:8080/smssync"
    assert settings.device_url("tok") == "http://127.0.0.1:8080/smssync/d/tok"


def test_environment_then_overrides() -> None:
    env = {
        "SMSSYNC_PORT": "9000",
        "SMSSYNC_DATA_DIR": "/srv/x",
        "SMSSYNC_PUBLIC_URL": "https://a.b/",
    }
    settings = Settings.from_env(env, port=9100)
    assert settings.port == 9100
    assert settings.data_dir == Path("/srv/x")
    assert settings.sync_url == "https://a.b/smssync"


def test_round_trip_through_worker_environment() -> None:
    settings = Settings.from_env({}, port=8123, database_url="postgresql://u@h/db", workers=2)
    assert Settings.from_env(settings.to_env()) == settings


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SMSSYNC_PORT": "eighty"}, "SMSSYNC_PORT"),
        ({"SMSSYNC_PORT": "70000"}, "port"),
        ({"SMSSYNC_WORKERS": "0"}, "workers"),
        ({"SMSSYNC_PUBLIC_URL": "sms.example.org"}, "public_url"),
    ],
)
def test_bad_values_name_the_setting(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)


def test_secret_prints_masked() -> None:
    assert "hunter2" not in repr(Secret("hunter2"))


def test_accepted_alert_hours() -> None:
    assert Settings.from_env({}).accepted_alert_h == 24
    assert Settings.from_env({"SMSSYNC_ACCEPTED_ALERT_H": "0"}).accepted_alert_h == 0
    env = {"SMSSYNC_ACCEPTED_ALERT_H": "6"}
    assert Settings.from_env(env).accepted_alert_h == 6
    assert Settings.from_env(env, accepted_alert_h=2).accepted_alert_h == 2
    with pytest.raises(ConfigError, match="accepted_alert_h"):
        Settings.from_env({"SMSSYNC_ACCEPTED_ALERT_H": "-1"})
    with pytest.raises(ConfigError, match="SMSSYNC_ACCEPTED_ALERT_H"):
        Settings.from_env({"SMSSYNC_ACCEPTED_ALERT_H": "a day"})


def test_the_server_key_prints_masked() -> None:
    key = "ab" * 32
    settings = Settings.from_env({"SMSSYNC_SERVER_KEY": key})
    assert settings.server_key == key and key not in repr(settings)
