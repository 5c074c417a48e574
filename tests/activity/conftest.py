import datetime as dt

import pytest

from ezpyr.activity.models import ActivityEntry

START = dt.datetime(2024, 5, 1, 12, 0, 0)


@pytest.fixture
def make_entries(dbsession):
    """Add committed log entries; the n-th is n minutes after START."""

    def make(*specs):
        entries = []
        for n, spec in enumerate(specs):
            fields = {"node_name": "node-test", "remote_addr": "198.51.100.7", **spec}
            fields.setdefault("at", START + dt.timedelta(minutes=n))
            entries.append(ActivityEntry(**fields))
        dbsession.add_all(entries)
        dbsession.commit()
        return entries

    return make
