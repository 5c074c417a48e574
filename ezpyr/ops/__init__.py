"""What operators point their tools at: ``/healthz`` and ``/readyz`` for
load balancers, ``/metrics`` for Prometheus (granted scrapers only), and the
request context that JSON log lines carry."""


def includeme(config):
    from ezpyr.ops.metrics import HttpMetrics, allowed_scrapers

    settings = config.get_settings()
    config.registry["ezpyr.metrics"] = HttpMetrics()
    config.registry["ezpyr.metrics.allow"] = allowed_scrapers(settings.get("ezpyr.metrics.allow"))
    config.add_route("ops.healthz", "/healthz")
    config.add_route("ops.readyz", "/readyz")
    config.add_route("ops.metrics", "/metrics")
    config.add_tween("ezpyr.ops.metrics.request_tween_factory")
