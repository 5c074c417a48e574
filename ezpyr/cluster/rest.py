"""The cluster page over the REST API: the cluster's state and its buttons
(Verify, Add, Make master, Resolve, Disconnect/Connect), faces over
``ClusterActions`` like the panel's page and ``ezpyr-cluster``. The long
actions answer 202 with their job (``GET /jobs/{id}`` follows it).

Verify, Make master, Resolve and Disconnect/Connect are allowed on a slave,
as on the panel (``node_local``): they change only this node's own state,
or refuse themselves when they are the master's to do (Resolve). Add is the
master's.

Not ``ezpyr/cluster/api.py``: that is the API the two nodes call on each
other."""
from __future__ import annotations

from ezpyr.api.framework import body_of, endpoint, route
from ezpyr.cluster.resolve import Plan
from ezpyr.cluster.rest_schemas import (
    AddIn, ClusterOut, MakeMasterIn, ResolveIn, ResolvePreviewOut,
)
from ezpyr.jobs.api import LOCATION, started
from ezpyr.jobs.schemas import JobStartedOut

CLUSTER = route("api.cluster", "/cluster")
VERIFY = route("api.cluster_verify", "/cluster/verify")
ADD = route("api.cluster_add", "/cluster/add")
MAKE_MASTER = route("api.cluster_make_master", "/cluster/make-master")
RESOLVE_PREVIEW = route("api.cluster_resolve_preview", "/cluster/resolve/preview")
RESOLVE = route("api.cluster_resolve", "/cluster/resolve")
DISCONNECT = route("api.cluster_disconnect", "/cluster/disconnect")
CONNECT = route("api.cluster_connect", "/cluster/connect")

JOB = {"response": JobStartedOut, "status": 202, "headers": LOCATION, "write": True, "tag": "cluster"}


def _state(request) -> dict:
    return ClusterOut.of(request.services.cluster.state().as_dict())


@endpoint(CLUSTER, "GET", "This node's cluster status", response=ClusterOut, tag="cluster")
def cluster(request):
    return _state(request)


@endpoint(VERIFY, "POST", "Verify: compare every replicated table with the other node's (a job; its result "
          "names the rows that differ). A Verify asked for while one runs follows the running one",
          node_local=True, does="cluster.verify", **JOB)
def verify(request):
    return started(request, request.services.cluster_actions.verify())


@endpoint(ADD, "POST", "Add: set up the cluster with a secondary installed with ezpyr-init --secondary "
          "(a job: it copies every row to the secondary)", body=AddIn, does="cluster.add", **JOB)
def add(request):
    data = body_of(request, AddIn)
    return started(request, request.services.cluster_actions.add(data.address, data.setup_key))


@endpoint(MAKE_MASTER, "POST", "Make master, on the slave: switch over (graceful), or with force take over from "
          "a master that does not answer (a job; without force, its result may ask for confirmation)",
          body=MakeMasterIn, node_local=True, does="cluster.make_master", **JOB)
def make_master(request):
    data = body_of(request, MakeMasterIn)
    return started(request, request.services.cluster_actions.make_master(force=data.force))


def _plan(data: ResolveIn) -> Plan:
    return Plan(all=data.keep, tables=dict(data.tables), rows={t: dict(r) for t, r in data.rows.items()})


@endpoint(RESOLVE_PREVIEW, "POST", "During a split-brain, on the master: what the choices would keep and lose "
          "(changes nothing)", body=ResolveIn, response=ResolvePreviewOut, node_local=True, tag="cluster")
def resolve_preview(request):
    data = body_of(request, ResolveIn)
    actions = request.services.cluster_actions
    chosen = actions.resolve_plan(actions.verify_report(data.verify_job), _plan(data))
    return {"decided": chosen.decided, "lost": chosen.lost}


@endpoint(RESOLVE, "POST", "During a split-brain, on the master: back up both nodes, keep the chosen side of "
          "every differing row and resync the other node (a job)", body=ResolveIn, node_local=True,
          does="cluster.resolve", **JOB)
def resolve(request):
    data = body_of(request, ResolveIn)
    actions = request.services.cluster_actions
    return started(request, actions.resolve(actions.verify_report(data.verify_job), _plan(data)))


@endpoint(DISCONNECT, "POST", "Disconnect: stop probing the other node; this node's changes stay queued",
          response=ClusterOut, write=True, node_local=True, does="cluster.disconnect", tag="cluster")
def disconnect(request):
    request.services.cluster_actions.disconnect()
    return _state(request)


@endpoint(CONNECT, "POST", "Connect: resume probing; the backlog drains when the other node is up",
          response=ClusterOut, write=True, node_local=True, does="cluster.connect", tag="cluster")
def connect(request):
    request.services.cluster_actions.connect()
    return _state(request)
