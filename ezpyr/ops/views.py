"""Health checks and metrics. The checks are open (load balancers call them
without credentials) and say only what is wrong; /metrics answers only the
scrapers that ``ezpyr.metrics.allow`` names."""
from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry
from pyramid.response import Response
from pyramid.security import NO_PERMISSION_REQUIRED
from pyramid.view import view_config
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from ezpyr.ops.metrics import ClusterCollector, may_scrape
from ezpyr.replication.schema import code_revision, database_revision


@view_config(route_name="ops.healthz", request_method="GET", renderer="json",
             permission=NO_PERMISSION_REQUIRED)
def healthz(request):
    """The process is up and answering; nothing else is looked at."""
    return {"status": "ok"}


def readiness_problems(request) -> list[str]:
    engine = request.registry["db_engine"]
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            revision = database_revision(conn)
    except SQLAlchemyError as error:
        return [f"the database is unreachable ({type(getattr(error, 'orig', error)).__name__})"]
    problems = []
    if revision != code_revision():
        problems.append(f"the database is at schema revision {revision or 'none'}, this code needs "
                        f"{code_revision()}")
        return problems
    worker = request.services.cluster.worker()
    if not worker.running:
        problems.append(worker.problem)
    return problems


@view_config(route_name="ops.readyz", request_method="GET", renderer="json",
             permission=NO_PERMISSION_REQUIRED)
def readyz(request):
    """Ready to serve: the database answers, its schema is this code's, and
    this node's worker reported recently. 503 with the reasons otherwise."""
    try:
        problems = readiness_problems(request)
    except SQLAlchemyError as error:
        problems = [f"the database is unreachable ({type(getattr(error, 'orig', error)).__name__})"]
    if problems:
        request.response.status = 503
    return {"ready": not problems, "problems": problems}


@view_config(route_name="ops.metrics", request_method="GET", permission=NO_PERMISSION_REQUIRED)
def metrics(request):
    """Prometheus' text format, to the scrapers ezpyr.metrics.allow names."""
    if not may_scrape(request.registry["ezpyr.metrics.allow"], request.remote_addr):
        return Response("This address may not read the metrics (ezpyr.metrics.allow).\n", status=403,
                        content_type="text/plain", charset="utf-8")
    scrape = CollectorRegistry(auto_describe=False)
    scrape.register(ClusterCollector(request.dbsession))
    body = generate_latest(request.registry["ezpyr.metrics"].registry) + generate_latest(scrape)
    return Response(body=body, content_type=CONTENT_TYPE_LATEST.split(";")[0], charset="utf-8")
