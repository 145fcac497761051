from __future__ import annotations

import os
from pathlib import Path

import pytest

from smssync.errors import ConfigError
from smssync.settings import SECRETS, Flag, Secret, Settings, flag_of


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start every test without SMSSYNC_* variables, whatever the shell exported."""
    for name in list(os.environ):
        if name.startswith("SMSSYNC_"):
            monkeypatch.delenv(name)


def test_defaults_use_sqlite_in_the_data_dir() -> None:
    settings = Settings.from_env()
    assert settings.store_url == "sqlite:///smssync-data/smssync.db"
    assert settings.sync_url == "http://127.0.0.1:8080/smssync"
    assert settings.device_url("tok") == "http://127.0.0.1:8080/smssync/d/tok"


def test_environment_then_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMSSYNC_PORT", "9000")
    monkeypatch.setenv("SMSSYNC_DATA_DIR", "/srv/x")
    monkeypatch.setenv("SMSSYNC_PUBLIC_URL", "https://a.b/")
    settings = Settings.from_env(port=9100)
    assert settings.port == 9100
    assert settings.data_dir == Path("/srv/x")
    assert settings.sync_url == "https://a.b/smssync"


def test_round_trip_through_worker_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings.from_env(port=8123, database_url="postgresql://u@h/db", workers=2)
    for name, value in settings.to_env().items():
        monkeypatch.setenv(name, value)
    assert Settings.from_env() == settings


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SMSSYNC_PORT": "eighty"}, "SMSSYNC_PORT"),
        ({"SMSSYNC_PORT": "70000"}, "port"),
        ({"SMSSYNC_WORKERS": "0"}, "workers"),
        ({"SMSSYNC_PUBLIC_URL": "sms.example.org"}, "public_url"),
        ({"SMSSYNC_SYNC_PATH": "/smssync/"}, "sync_path"),
        ({"SMSSYNC_WEBHOOK_ALLOW": "not a network/99"}, "webhook_allow"),
    ],
)
def test_bad_values_name_the_setting(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message):
        Settings.from_env()


def test_every_bad_value_is_named_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMSSYNC_PORT", "0")
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(workers=0)
    assert "SMSSYNC_PORT" in str(caught.value) and "SMSSYNC_WORKERS" in str(caught.value)


def test_secret_prints_masked() -> None:
    assert "hunter2" not in repr(Secret("hunter2"))


def test_accepted_alert_hours(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings.from_env().accepted_alert_h == 24
    monkeypatch.setenv("SMSSYNC_ACCEPTED_ALERT_H", "0")
    assert Settings.from_env().accepted_alert_h == 0
    monkeypatch.setenv("SMSSYNC_ACCEPTED_ALERT_H", "6")
    assert Settings.from_env().accepted_alert_h == 6
    assert Settings.from_env(accepted_alert_h=2).accepted_alert_h == 2
    monkeypatch.setenv("SMSSYNC_ACCEPTED_ALERT_H", "-1")
    with pytest.raises(ConfigError, match="accepted_alert_h"):
        Settings.from_env()
    monkeypatch.setenv("SMSSYNC_ACCEPTED_ALERT_H", "a day")
    with pytest.raises(ConfigError, match="SMSSYNC_ACCEPTED_ALERT_H"):
        Settings.from_env()


def test_the_server_key_prints_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    key = "ab" * 32
    monkeypatch.setenv("SMSSYNC_SERVER_KEY", key)
    settings = Settings.from_env()
    assert settings.server_key == key and key not in repr(settings)
    assert key not in repr(Settings(server_key=key))


def test_settings_are_frozen() -> None:
    settings = Settings.from_env()
    with pytest.raises(ValueError, match="frozen"):
        settings.port = 1


def test_only_secrets_have_no_flag() -> None:
    no_flag = [n for n in Settings.model_fields if flag_of(n) is Flag.NONE]
    assert no_flag == ["server_key", "metrics_token"]
    assert set(no_flag) == SECRETS


def test_the_metrics_token_prints_masked_and_is_never_quoted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SMSSYNC_METRICS_TOKEN", "scrape-me-7f3a")
    settings = Settings.from_env()
    assert settings.metrics_token == "scrape-me-7f3a"
    assert "scrape-me-7f3a" not in repr(settings)


def test_the_log_format_is_text_or_json(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings.from_env().log_format == "text"
    assert Settings.from_env(log_format="json").log_format == "json"
    monkeypatch.setenv("SMSSYNC_LOG_FORMAT", "xml")
    with pytest.raises(ConfigError, match="SMSSYNC_LOG_FORMAT"):
        Settings.from_env()
