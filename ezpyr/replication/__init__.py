def includeme(config):
    """Importing capture installs the change-capture listeners."""
    import ezpyr.replication.capture  # noqa: F401
