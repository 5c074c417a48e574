def cluster(request):
    """``request.cluster``: the cluster as this node sees it."""
    return request.services.cluster


def cluster_actions(request):
    """``request.cluster_actions``: the cluster page's actions on behalf of
    the signed-in admin."""
    return request.services.cluster_actions


def includeme(config):
    config.add_request_method(cluster, property=True)
    config.add_request_method(cluster_actions, property=True)
    config.add_route("cluster.view", "/cluster")
    config.add_route("cluster.disconnect", "/cluster/disconnect")
    config.add_route("cluster.connect", "/cluster/connect")
    config.add_route("cluster.verify", "/cluster/verify")
    config.add_route("cluster.add", "/cluster/add")
    config.add_route("cluster.make_master", "/cluster/make-master")
    config.add_route("cluster.resolve", "/cluster/resolve/{job}")
    config.add_route("cluster.api.hello", "/cluster/api/hello")
    config.add_route("cluster.api.status", "/cluster/api/status")
    config.add_route("cluster.api.resend", "/cluster/api/resend")
    config.add_route("cluster.api.checksums", "/cluster/api/checksums")
    config.add_route("cluster.api.row_hashes", "/cluster/api/row-hashes")
    config.add_route("cluster.api.rows", "/cluster/api/rows")
    config.add_route("cluster.api.demote", "/cluster/api/demote")
    config.add_route("cluster.api.undemote", "/cluster/api/undemote")
    config.add_route("cluster.api.handed_over", "/cluster/api/handed-over")
    config.add_route("cluster.api.provenance", "/cluster/api/provenance")
    config.add_route("cluster.api.backup", "/cluster/api/backup")
    config.add_route("cluster.api.rotate_secret", "/cluster/api/rotate-secret")
    for step in ("begin", "chunk", "finish"):
        config.add_route(f"cluster.api.resync_{step}", f"/cluster/api/resync/{step}")
    for step in ("hello", "begin", "chunk", "finish", "abort"):
        config.add_route(f"cluster.api.setup_{step}", f"/cluster/api/setup/{step}")
