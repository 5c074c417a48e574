# Account tasks follow every change of a user or a user's key (session hooks).
from ezpyr.accounts import tasks as _account_tasks  # noqa: F401


def includeme(config):
    config.add_route("user_groups.list", "/user-groups")
    config.add_route("user_groups.new", "/user-groups/new")
    config.add_route("user_groups.edit", "/user-groups/{id}/edit")
    config.add_route("user_groups.delete", "/user-groups/{id}/delete")

    config.add_route("users.list", "/users")
    config.add_route("users.new", "/users/new")
    config.add_route("users.locked", "/users/locked")
    config.add_route("users.release_address", "/users/locked/release")
    config.add_route("users.edit", "/users/{id}/edit")
    config.add_route("users.suspend", "/users/{id}/suspend")
    config.add_route("users.reinstate", "/users/{id}/reinstate")
    config.add_route("users.password", "/users/{id}/password")
    config.add_route("users.reset_2fa", "/users/{id}/reset-2fa")
    config.add_route("users.unlock", "/users/{id}/unlock")
    config.add_route("users.delete", "/users/{id}/delete")
    config.add_route("users.keys", "/users/{id}/keys")
    config.add_route("users.key_add", "/users/{id}/keys/add")
    config.add_route("users.key_delete", "/users/{id}/keys/{key_id}/delete")

    config.add_route("profile.view", "/profile")
    config.add_route("profile.servers", "/profile/servers")
    config.add_route("profile.password", "/profile/password")
    config.add_route("profile.key_add", "/profile/keys/add")
    config.add_route("profile.key_delete", "/profile/keys/{key_id}/delete")
