"""Prometheus metrics. The HTTP ones are counted in this process as
requests pass; the cluster's are read from this node's database at each
scrape (the worker records them there), so every panel process of a node
reports the same figures."""
from __future__ import annotations

import datetime as dt
import ipaddress
import json
import time
import uuid

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from sqlalchemy import func, select

from ezpyr.logs import request_context

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
STATUSES = ("not configured", "connecting", "connected", "disconnected", "unreachable", "split_brain")
ROLES = ("standalone", "master", "slave", "secondary")


class HttpMetrics:
    """This process's requests, by route, method and status."""

    def __init__(self):
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("ezpyr_http_requests", "HTTP requests answered, by route and status",
                                ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram("ezpyr_http_request_duration_seconds", "Time to answer, by route",
                                 ["route"], buckets=LATENCY_BUCKETS, registry=self.registry)

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route).observe(seconds)


def allowed_scrapers(setting: str | None) -> list:
    """``ezpyr.metrics.allow``: addresses and networks (space or comma
    separated) that may read /metrics; loopback only when unset."""
    words = (setting if setting is not None else "127.0.0.1 ::1").replace(",", " ").split()
    try:
        return [ipaddress.ip_network(word, strict=False) for word in words]
    except ValueError as error:
        raise ValueError(f"ezpyr.metrics.allow: {error}") from None


def may_scrape(networks: list, address: str | None) -> bool:
    try:
        ip = ipaddress.ip_address((address or "").split("%")[0])
    except ValueError:
        return False
    return any(ip in network for network in networks)


def request_tween_factory(handler, registry):
    metrics: HttpMetrics = registry["ezpyr.metrics"]
    node = registry.settings.get("ezpyr.node_name", "")

    def tween(request):
        started = time.perf_counter()
        token = request_context.set({"request_id": uuid.uuid4().hex[:16], "node": node, "request": request})
        status = 500
        try:
            response = handler(request)
            status = response.status_code
            response.headers.setdefault("X-Request-Id", request_context.get()["request_id"])
            return response
        finally:
            route = request.matched_route.name if request.matched_route is not None else "(no route)"
            metrics.observe(route, request.method if request.method in ("GET", "POST", "HEAD") else "other",
                            status, time.perf_counter() - started)
            request_context.reset(token)

    return tween


class ClusterCollector:
    """This node's cluster, as its database holds it, at scrape time."""

    def __init__(self, dbsession):
        self.dbsession = dbsession

    def collect(self):
        from ezpyr.auth.models import LoginThrottle
        from ezpyr.auth.throttle import Throttle
        from ezpyr.meta import utcnow
        from ezpyr.settings.services import SettingsService
        from ezpyr.cluster.models import WorkerState
        from ezpyr.cluster.services import ClusterService
        from ezpyr.jobs.models import Job
        from ezpyr.node.models import NodeIdentity
        from ezpyr.replication.apply import version_vector

        known = self.dbsession.scalars(select(NodeIdentity)).first() is not None
        yield GaugeMetricFamily("ezpyr_node_initialised", "1 once ezpyr-init gave this node its identity",
                                value=1.0 if known else 0.0)
        if not known:
            return
        state = ClusterService(self.dbsession).state()
        role = GaugeMetricFamily("ezpyr_node_role", "1 for this node's role", labels=["role"])
        for name in ROLES:
            role.add_metric([name], 1.0 if state.node.role == name else 0.0)
        yield role
        yield GaugeMetricFamily("ezpyr_node_epoch", "This node's epoch", value=state.node.epoch)
        status = GaugeMetricFamily("ezpyr_peer_status", "1 for the cluster's status", labels=["status"])
        current = "split_brain" if state.split_brain else state.status
        for name in STATUSES:
            status.add_metric([name], 1.0 if current == name else 0.0)
        yield status
        yield GaugeMetricFamily("ezpyr_split_brain", "1 while the nodes are in a split-brain",
                                value=1.0 if state.split_brain else 0.0)
        peer = state.peer
        backlog = GaugeMetricFamily("ezpyr_backlog_changes", "Changes the other node has not applied",
                                    labels=["stage"])
        backlog.add_metric(["unsent"], peer.backlog_unsent if peer else 0)
        backlog.add_metric(["queued"], peer.backlog_queued if peer else 0)
        yield backlog
        yield GaugeMetricFamily("ezpyr_peer_heartbeat_age_seconds", "Since the other node last answered",
                                value=state.heartbeat_age if state.heartbeat_age is not None else float("nan"))
        yield GaugeMetricFamily("ezpyr_worker_heartbeat_age_seconds", "Since this node's worker last reported",
                                value=state.worker.heartbeat_age if state.worker.heartbeat_age is not None
                                else float("nan"))
        yield GaugeMetricFamily("ezpyr_worker_up", "1 while this node's worker reports",
                                value=1.0 if state.worker.running else 0.0)
        yield GaugeMetricFamily("ezpyr_replication_lag_seconds",
                                "Age of the oldest change the other node has not applied (last probe)",
                                value=peer.lag_seconds if peer and peer.lag_seconds is not None else 0.0)
        worker = self.dbsession.get(WorkerState, 1)
        histogram = json.loads(worker.lag_histogram) if worker is not None and worker.lag_histogram else None
        if histogram:
            yield HistogramMetricFamily(
                "ezpyr_replication_lag_probe_seconds",
                "Age of the oldest change the other node has not applied, observed at each probe",
                buckets=[(le, count) for le, count in histogram["buckets"]], sum_value=histogram["sum"])
        vector = version_vector(self.dbsession.connection())
        applied = CounterMetricFamily("ezpyr_changes_applied", "Changes of the other node applied here")
        applied.add_metric([], sum(seq for (origin, _epoch), seq in vector.items() if origin != state.node.id))
        yield applied
        made = CounterMetricFamily("ezpyr_changes_made", "Changes made on this node (its own streams)")
        made.add_metric([], sum(seq for (origin, _epoch), seq in vector.items() if origin == state.node.id))
        yield made
        refused = CounterMetricFamily("ezpyr_change_messages_refused",
                                      "Broker messages refused (unsigned, forged, re-labelled, malformed) "
                                      "and kept out of the database")
        refused.add_metric([], state.refused.total if state.refused else 0)
        yield refused
        verify = self.dbsession.scalars(select(Job).where(Job.kind == "verify", Job.state.in_(("done", "failed")))
                                        .order_by(Job.finished_at.desc()).limit(1)).first()
        in_sync = GaugeMetricFamily("ezpyr_verify_in_sync",
                                    "Last Verify: 1 in sync, 0 differences, -1 failed or never run")
        age = GaugeMetricFamily("ezpyr_verify_age_seconds", "Since the last Verify finished")
        if verify is None:
            in_sync.add_metric([], -1)
        else:
            result = json.loads(verify.result or "{}") if verify.state == "done" else {}
            in_sync.add_metric([], -1 if verify.state == "failed" else 1 if result.get("in_sync") else 0)
            age.add_metric([], max(0.0, (utcnow() - verify.finished_at).total_seconds()))
        yield in_sync
        yield age
        panel = SettingsService(self.dbsession).current()
        throttle = Throttle(self.dbsession.get_bind(), panel.lockout_threshold, panel.lockout_minutes)
        live = utcnow() - dt.timedelta(minutes=panel.lockout_minutes)
        # every failure counts once under its account-and-address key
        failures = self.dbsession.scalar(select(func.coalesce(func.sum(LoginThrottle.failures), 0)).where(
            LoginThrottle.kind == "pair", LoginThrottle.window_started_at >= live))
        yield GaugeMetricFamily("ezpyr_login_failures", "Failed sign-ins counted toward lockouts now",
                                value=float(failures or 0))
        locked = {h["username"] or h["address"] for h in throttle.throttled(self.dbsession)
                  if h["kind"] in ("pair", "account")}
        yield GaugeMetricFamily("ezpyr_login_locked_accounts",
                                "Accounts locked out now (for at least one address)", value=float(len(locked)))


class LagHistogram:
    """Cumulative counts of the lag the worker measures at each probe, kept
    by the worker and written with its heartbeat (JSON) for /metrics."""

    BOUNDS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

    def __init__(self):
        self.counts = [0] * (len(self.BOUNDS) + 1)  # the last is +Inf
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        self.sum += seconds
        for i, bound in enumerate(self.BOUNDS):
            if seconds <= bound:
                self.counts[i] += 1
                break
        else:
            self.counts[-1] += 1

    def as_json(self) -> str:
        cumulative, total = [], 0
        for bound, count in zip([*map(str, self.BOUNDS), "+Inf"], self.counts):
            total += count
            cumulative.append((bound, total))
        return json.dumps({"buckets": cumulative, "sum": self.sum})
