def includeme(config):
    """Importing capture installs the change-capture listeners; the code's
    schema revision is looked up from the ini's [alembic] section."""
    import ezpyr.replication.capture  # noqa: F401
    from ezpyr.replication.schema import use_config

    use_config(config.registry.settings.get("ezpyr.config_file"))
