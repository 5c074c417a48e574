"""The operators' endpoints: /healthz, /readyz and /metrics (granted
scrapers only), and JSON log lines with the request's context."""
from __future__ import annotations

import datetime as dt
import json
import logging

import pytest
import webtest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from ezpyr import main
from ezpyr.cluster.models import WorkerState
from ezpyr.logs import JsonFormatter
from ezpyr.meta import utcnow
from tests.backends import drop_database, new_database
from tests.cluster.conftest import this_node  # noqa: F401 - a fixture
from tests.conftest import app_settings, migrate
from tests.factories import post
from tests.servers.conftest import server_form

LOCAL = {"REMOTE_ADDR": "127.0.0.1"}


def families(body: str) -> dict:
    return {family.name: family for family in text_string_to_metric_families(body)}


def value(family, **labels) -> float:
    for sample in family.samples:
        if all(sample.labels.get(k) == v for k, v in labels.items()) and not sample.name.endswith("_created"):
            return sample.value
    raise AssertionError(f"no sample {labels} in {family.name}")


def heartbeat(dbsession, age_seconds: float):
    dbsession.merge(WorkerState(id=1, pid=1, started_at=utcnow(), relay_state="idle",
                                heartbeat_at=utcnow() - dt.timedelta(seconds=age_seconds)))
    dbsession.commit()


def test_healthz_answers_anyone(testapp):
    assert testapp.get("/healthz").json == {"status": "ok"}


def test_readyz_wants_a_worker_that_reported_recently(testapp, dbsession):
    refused = testapp.get("/readyz", status=503).json
    assert refused["ready"] is False and "never run" in refused["problems"][0]
    heartbeat(dbsession, 1)
    assert testapp.get("/readyz").json == {"ready": True, "problems": []}
    heartbeat(dbsession, 120)
    assert "has not reported for 120 s" in testapp.get("/readyz", status=503).json["problems"][0]


def test_readyz_says_when_the_database_is_unreachable():
    app = webtest.TestApp(main({}, **app_settings("mysql+pymysql://root@127.0.0.1:1/ezpyr_nowhere")))
    problems = app.get("/readyz", status=503).json["problems"]
    assert problems == ["the database is unreachable (OperationalError)"]
    assert app.get("/healthz").json == {"status": "ok"}  # the process itself is up


def test_readyz_says_when_the_schema_is_not_this_codes(backend, tmp_path_factory):
    url = new_database(backend, tmp_path_factory)
    try:
        migrate(url, "0010")
        app = webtest.TestApp(main({}, **app_settings(url)))
        [problem] = app.get("/readyz", status=503).json["problems"]
        assert problem.startswith("the database is at schema revision 0010, this code needs ")
    finally:
        drop_database(url)


def test_metrics_only_for_granted_scrapers(testapp):
    refused = testapp.get("/metrics", status=403)
    assert "ezpyr_" not in refused.text
    assert testapp.get("/metrics", extra_environ={"REMOTE_ADDR": "::1"}).status_code == 200


def requests_counted(testapp, **labels) -> float:
    """The app's request counter, summed over the samples with ``labels``
    (the app serves other tests too: compare before and after)."""
    found = families(testapp.get("/metrics", extra_environ=LOCAL).text)
    family = found.get("ezpyr_http_requests")
    if family is None:
        return 0.0
    return sum(sample.value for sample in family.samples if sample.name.endswith("_total")
               and all(sample.labels.get(k) == v for k, v in labels.items()))


def test_metrics_parse_and_describe_this_node(testapp, dbsession, this_node):
    heartbeat(dbsession, 2)
    logins = requests_counted(testapp, route="auth.login", method="GET")
    missing = requests_counted(testapp, route="(no route)", status="404")
    assert testapp.get("/login").status_int == 200
    testapp.get("/no-such-page", status=404)
    body = testapp.get("/metrics", extra_environ=LOCAL).text
    found = families(body)
    assert value(found["ezpyr_node_role"], role="master") == 1
    assert value(found["ezpyr_node_role"], role="slave") == 0
    assert value(found["ezpyr_peer_status"], status="not configured") == 1
    assert value(found["ezpyr_worker_up"]) == 1
    assert value(found["ezpyr_backlog_changes"], stage="unsent") == 0
    assert value(found["ezpyr_verify_in_sync"]) == -1
    assert requests_counted(testapp, route="auth.login", method="GET") == logins + 1
    assert requests_counted(testapp, route="(no route)", status="404") == missing + 1
    assert "ezpyr_http_request_duration_seconds" in found


def test_a_granted_network_may_scrape(engine, database_url):
    app = webtest.TestApp(main({}, **app_settings(database_url, **{
        "ezpyr.engine": engine, "ezpyr.metrics.allow": "192.0.2.0/24, 2001:db8::/32"})))
    assert app.get("/metrics", extra_environ={"REMOTE_ADDR": "192.0.2.77"}).status_code == 200
    assert app.get("/metrics", extra_environ={"REMOTE_ADDR": "2001:db8::5"}).status_code == 200
    app.get("/metrics", extra_environ=LOCAL, status=403)  # loopback is no longer in the list


def test_a_malformed_scraper_list_stops_the_panel_with_its_name(database_url, engine):
    with pytest.raises(ValueError, match="ezpyr.metrics.allow"):
        main({}, **app_settings(database_url, **{"ezpyr.engine": engine, "ezpyr.metrics.allow": "10.0.0.0/33"}))


class Lines(logging.Handler):
    """Formats each record as it is emitted (when the request is current)."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.setFormatter(JsonFormatter())
        self.lines = []

    def emit(self, record):
        self.lines.append(json.loads(self.format(record)))


def test_json_log_lines_carry_the_request_id_user_node_and_action(admin_app):
    handler = Lines()
    logger = logging.getLogger("ezpyr")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        post(admin_app, "/servers/new", server_form(name="json-logged", host="10.9.9.9"))
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    [line] = [line for line in handler.lines if "json-logged" in line["message"]]
    assert line["user"] == "root_admin" and line["action"].startswith("server")
    assert len(line["request_id"]) == 16 and line["node"] == "node-test"
    assert line["path"] == "/servers/new" and line["method"] == "POST"
    assert line["logger"] == "ezpyr.activity.services" and line["level"] == "INFO"
