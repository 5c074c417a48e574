"""ezpyr: an SSH jump server with a web panel and a two-node cluster.

Nothing heavy is imported here: ``ezsh`` (the gateway users' login shell)
imports this package, and it must start in a blink (not even logging)."""
__version__ = "0.1.0"


def main(global_config, **settings):
    """The panel's WSGI application. Without its key files (before
    ``ezpyr-init CONFIG``) the panel cannot start: pserve says so in one
    line instead of a traceback."""
    from ezpyr.logs import set_node_name
    from ezpyr.secretbox import SecretKeyMissing

    settings.setdefault("ezpyr.config_file", (global_config or {}).get("__file__", ""))
    set_node_name(settings.get("ezpyr.node_name", ""))
    try:
        return make_app(settings)
    except SecretKeyMissing as error:
        raise SystemExit(f"ezpyr: {error}; the panel cannot start without it.") from None


def make_app(settings: dict):
    from pyramid.config import Configurator

    with Configurator(settings=settings) as config:
        config.include("pyramid_jinja2")
        config.add_jinja2_search_path("ezpyr:templates", name=".jinja2")
        config.include(".database")
        config.include(".secretbox")
        config.include(".passwords")
        config.include(".security")
        config.include(".errors")
        config.include(".ops")
        config.include(".routes")
        config.include(".services")
        config.include(".activity")
        config.include(".auth")
        config.include(".home")
        config.include(".users")
        config.include(".accounts")
        config.include(".servers")
        config.include(".access")
        config.include(".guard")
        config.include(".settings")
        config.include(".gateway")
        config.include(".replication")
        config.include(".jobs")
        config.include(".api")
        config.include(".cluster")
        config.include(".cluster.readonly")
        config.scan(ignore=["ezpyr.scripts", "ezpyr.meta", "ezpyr.gateway.daemon",
                            "ezpyr.gateway.conversation", "ezpyr.gateway.passage",
                            "ezpyr.gateway.shell"])
    return config.make_wsgi_app()
