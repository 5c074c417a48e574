from ezpyr.jobs.services import fail_interrupted_jobs


def includeme(config):
    config.add_route("jobs.status", "/jobs/{id}.json")
    config.add_route("jobs.view", "/jobs/{id}")
    if not config.registry.settings.get("ezpyr.testing"):
        config.action("ezpyr.jobs.interrupted",
                      lambda: fail_interrupted_jobs(config.registry["db_engine"]), order=10)
