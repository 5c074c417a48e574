"""The production config templates in config/: the ini sample is loadable
and secure, the systemd units run ezpyr unprivileged."""
from __future__ import annotations

import configparser
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import webtest
from pyramid.paster import get_app
from waitress.adjustments import Adjustments

from ezpyr.secretbox import generate_key
from tests.conftest import CHEAP_ARGON2, ROOT, migrate

CONFIG = ROOT / "config"
SAMPLE = CONFIG / "production.ini.sample"
UNITS = {"ezpyr-panel.service": "pserve", "ezpyr-worker.service": "ezpyr-worker"}
INI_PATH = "/etc/ezpyr/production.ini"


def sample(**defaults) -> configparser.ConfigParser:
    """The sample read as PasteDeploy reads it (``here`` interpolated)."""
    parser = configparser.ConfigParser(defaults={"here": str(CONFIG), **defaults})
    parser.read(SAMPLE)
    return parser


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read(CONFIG / name)
    return parser


def test_secure_cookies_are_on():
    app = sample()["app:main"]
    assert app.getboolean("ezpyr.session.secure") is True


def test_no_development_settings():
    app = sample()["app:main"]
    for name in ("pyramid.reload_templates", "pyramid.debug_authorization",
                 "pyramid.debug_notfound", "pyramid.debug_routematch"):
        assert app.getboolean(name) is False, name
    assert "debugtoolbar" not in app.get("pyramid.includes", "")
    assert "ezpyr.testing" not in app


def test_mariadb_and_rabbitmq_with_placeholders_only():
    app = sample()["app:main"]
    assert app["sqlalchemy.url"].startswith("mysql+pymysql://")
    assert "charset=utf8mb4" in app["sqlalchemy.url"]
    assert app["ezpyr.broker_url"].startswith("amqp://")
    text = SAMPLE.read_text()
    # every password in a URL is the placeholder
    assert set(re.findall(r"://[^:/@\s]+:([^@\s]+)@", text)) == {"CHANGE-ME"}


def test_secrets_come_from_the_environment_or_files_under_var_lib():
    app = sample()["app:main"]
    assert "ezpyr.secret_key" not in app and "ezpyr.session_secret" not in app
    assert app["ezpyr.secret_key_file"] == "/var/lib/ezpyr/secret.key"
    assert app["ezpyr.session_secret_file"] == "/var/lib/ezpyr/session.key"
    assert "EZPYR_SECRET_KEY" in SAMPLE.read_text()


def test_waitress_behind_a_trusted_tls_proxy():
    server = dict(sample()["server:main"])
    assert server.pop("use") == "egg:waitress#main"
    server.pop("here")
    adjustments = Adjustments(**server)  # waitress accepts every setting
    assert adjustments.trusted_proxy == "127.0.0.1"
    assert {"x-forwarded-for", "x-forwarded-proto"} <= adjustments.trusted_proxy_headers
    assert adjustments.clear_untrusted_proxy_headers is True
    assert ("127.0.0.1", 6543) in [address[:2] for _, _, _, address in adjustments.listen]


def test_logging_goes_to_stderr_without_sql_parameters():
    raw = configparser.RawConfigParser()
    raw.read(SAMPLE)
    handlers = raw["handlers"]["keys"].replace(" ", "").split(",")
    for handler in handlers:
        assert raw[f"handler_{handler}"]["args"].replace(" ", "") == "(sys.stderr,)"
    assert raw["logger_sqlalchemy"]["qualname"] == "sqlalchemy.engine"
    assert raw["logger_sqlalchemy"]["level"] == "WARN"
    assert "sqlalchemy.echo" not in raw["app:main"]


def test_the_sample_builds_a_panel_with_secure_cookies(tmp_path):
    """The sample, with a SQLite database and key files of the test, serves
    the sign-in page with a Secure session cookie and HSTS."""
    db_url = f"sqlite:///{tmp_path}/ezpyr.sqlite"
    migrate(db_url)
    (tmp_path / "secret.key").write_text(generate_key())
    (tmp_path / "session.key").write_text("s" * 64)
    text = SAMPLE.read_text()
    text = re.sub(r"(?m)^sqlalchemy\.url = .*$", f"sqlalchemy.url = {db_url}", text)
    text = text.replace("/var/lib/ezpyr/", f"{tmp_path}/")
    text = text.replace("[app:main]\n", "[app:main]\n" + "".join(
        f"{k} = {v}\n" for k, v in CHEAP_ARGON2.items()), 1)
    ini = tmp_path / "production.ini"
    ini.write_text(text)
    app = get_app(str(ini), "main")
    try:
        res = webtest.TestApp(app).get("/login", extra_environ={"wsgi.url_scheme": "https"})
        cookie = res.headers["Set-Cookie"]
        assert cookie.startswith("ezpyr_session=")
        for flag in ("; secure", "; HttpOnly", "; SameSite=Lax"):
            assert flag.lower() in cookie.lower(), flag
        assert res.headers["Strict-Transport-Security"].startswith("max-age=")
        assert res.headers["X-Frame-Options"] == "DENY"
    finally:
        app.registry["db_engine"].dispose()


@pytest.mark.parametrize("name, script", UNITS.items())
def test_the_units_run_unprivileged_and_hardened(name, script):
    parsed = unit(name)
    service = parsed["Service"]
    assert service["User"] == "ezpyr" and service["Group"] == "ezpyr"
    assert service["ExecStart"] == f"/opt/ezpyr/.venv/bin/{script} {INI_PATH}"
    for key, value in {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
                       "PrivateTmp": "yes", "PrivateDevices": "yes", "CapabilityBoundingSet": "",
                       "RestrictSUIDSGID": "yes", "UMask": "0077",
                       "ReadWritePaths": "/var/lib/ezpyr"}.items():
        assert service.get(key) == value, key
    assert parsed["Install"]["WantedBy"] == "multi-user.target"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not here")
def test_systemd_accepts_the_units():
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", *UNITS], cwd=CONFIG,
                            capture_output=True, text=True, timeout=60)
    complaints = [line for line in (result.stdout + result.stderr).splitlines()
                  if line.strip() and "is not executable" not in line]  # /opt/ezpyr is not installed here
    assert complaints == []
