"""The panel's front page: an overview for admins; users go to their servers."""


def includeme(config):
    # the "home" route itself is shared by the whole app (ezpyr/routes.py)
    pass
