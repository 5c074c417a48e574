"""/metrics and /readyz of real nodes (pserve and ezpyr-worker processes):
the backlog grows while the slave's worker is stopped and drains once it
runs again; a worker killed with -9 turns /readyz to 503 once its heartbeat
is stale."""
from __future__ import annotations

import json
import signal
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ezpyr.servers.models import ServerGroup
from tests.cluster_nodes import make_cluster, wait_until

pytestmark = pytest.mark.slow


def get(node, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{node.port}{path}", timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def metric(node, name, **labels) -> float:
    status, body = get(node, "/metrics")
    assert status == 200, body
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    raise AssertionError(f"{name} {labels} not in /metrics")


def test_backlog_and_readiness_as_operators_see_them(tmp_path, backend, tmp_path_factory):
    a, b = make_cluster(tmp_path, backend, tmp_path_factory)
    try:
        a.start()
        b.start()
        wait_until(lambda: get(a, "/readyz")[0] == 200 and get(b, "/readyz")[0] == 200, 60,
                   message="both nodes ready")
        assert metric(a, "ezpyr_node_role", role="master") == 1
        assert metric(b, "ezpyr_node_role", role="slave") == 1
        applied_before = metric(b, "ezpyr_changes_applied_total")
        b.kill_worker(signal.SIGKILL)
        with a.env.session(actor="test") as s:
            s.add_all(ServerGroup(name=f"while-stopped-{i}") for i in range(25))
        wait_until(lambda: metric(a, "ezpyr_backlog_changes", stage="unsent")
                   + metric(a, "ezpyr_backlog_changes", stage="queued") >= 1, 30,
                   message="the backlog to show on the master's /metrics")
        # the slave's worker is gone: its heartbeat goes stale and /readyz says so
        status, body = wait_until(lambda: (lambda r: r if r[0] == 503 else None)(get(b, "/readyz")), 40,
                                  message="the slave's /readyz to turn 503")
        assert "has not reported" in json.loads(body)["problems"][0]
        b.start_worker()
        wait_until(lambda: b.count(ServerGroup) == 25, 60, message="the backlog to drain")
        wait_until(lambda: metric(a, "ezpyr_backlog_changes", stage="unsent")
                   + metric(a, "ezpyr_backlog_changes", stage="queued") == 0, 30,
                   message="the master's /metrics to show the backlog drained")
        wait_until(lambda: get(b, "/readyz")[0] == 200, 30, message="the slave ready again")
        assert metric(b, "ezpyr_changes_applied_total") == applied_before + 1  # one transaction
        assert metric(a, "ezpyr_replication_lag_probe_seconds_count") >= 1
        assert metric(a, "ezpyr_http_requests_total", route="ops.metrics", status="200") >= 1
    except BaseException:
        print(a.logs(), b.logs())
        raise
    finally:
        a.close()
        b.close()
