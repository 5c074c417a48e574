"""The API's users, their SSH keys, user groups, this node's sign-in
lockouts and API tokens: the same services as the panel's pages and
``ezpyr-admin users|keys|user-groups|tokens``.

Tokens are listed and revoked here, never made: a token that could make
tokens could make itself a successor that outlives its own revocation (see
``ezpyr.faces.ONE_FACE``)."""
from __future__ import annotations


from ezpyr.api.framework import (
    PAGED, ApiProblem, body_of, check_if_match, cursor_of, encode_cursor, endpoint, limit_of, page_of, query_text, route,
)
from ezpyr.api.models import ApiToken
from ezpyr.api.schemas import DeletedOut
from ezpyr.users.models import User, UserGroup, UserKey
from ezpyr.users.schemas import (
    AddressIn, KeyIn, KeyOut, KeyPage, LockoutOut, LockoutPage, PasswordIn, ReleasedOut, TokenOut, TokenPage,
    UserGroupIn, UserGroupOut, UserGroupPage, UserGroupPatch, UserIn, UserOut, UserPage, UserPatch,
    UserWithPassword,
)
from ezpyr.validation import Invalid

USERS = route("api.users", "/users")
USER = route("api.user", "/users/{id}")
SUSPEND = route("api.user_suspend", "/users/{id}/suspend")
REINSTATE = route("api.user_reinstate", "/users/{id}/reinstate")
RESET_2FA = route("api.user_reset_2fa", "/users/{id}/reset-2fa")
UNLOCK = route("api.user_unlock", "/users/{id}/unlock")
RESET_PASSWORD = route("api.user_reset_password", "/users/{id}/reset-password")
KEYS = route("api.user_keys", "/users/{id}/keys")
KEY = route("api.user_key", "/users/{id}/keys/{key_id}")
GROUPS = route("api.user_groups", "/user-groups")
GROUP = route("api.user_group", "/user-groups/{id}")
LOCKOUTS = route("api.lockouts", "/lockouts")
RELEASE = route("api.lockouts_release", "/lockouts/release")
TOKENS = route("api.tokens", "/tokens")
TOKEN = route("api.token", "/tokens/{id}")

LIMIT_ONLY = {name: PAGED[name] for name in ("limit", "cursor")}


def _paged(search: str) -> dict:
    return {**PAGED, "q": (PAGED["q"][0], search)}


# -- users -------------------------------------------------------------------------------

def user_out(request, user: User) -> dict:
    return UserOut.of(user, locked=request.services.auth.is_locked(user.username),
                      keys=request.services.user_keys.counts([user]).get(user.id, 0))


def _user(request) -> User:
    user = request.services.users.get(request.matchdict["id"])
    if user is None:
        raise ApiProblem(404, "There is no user with that id.")
    return user


def _group_id(request, name: str | None) -> str | None:
    """The id of the user group named ``name``; None for no name."""
    if not name:
        return None
    group = request.services.user_groups.by_name(name)
    if group is None:
        raise Invalid(f"There is no user group named {name!r}.", "group")
    return group.id


@endpoint(USERS, "GET", "List users (paged by username)", response=UserPage,
          query=_paged("text in the username, full name or e-mail"), tag="users")
def list_users(request):
    locked = {hold["username"] for hold in request.services.auth.throttled() if hold["username"]}

    def out(users):
        keys = request.services.user_keys.counts(users)
        return [UserOut.of(u, locked=u.username in locked, keys=keys.get(u.id, 0)) for u in users]

    return page_of(request, request.services.users.search(query_text(request)), (User.username, User.id), out)


@endpoint(USERS, "POST", "Create a user; without a password one is generated and returned this once",
          body=UserIn, response=UserWithPassword, status=201, write=True, does="user.create", tag="users")
def create_user(request):
    data = body_of(request, UserIn)
    service = request.services.users
    generated = None if data.password else service.new_password()
    user = service.create(data.username, data.password or generated, role=data.role,
                          full_name=data.full_name, email=data.email, group_id=_group_id(request, data.group))
    return {"user": user_out(request, user), "password": generated}


@endpoint(USER, "GET", "One user", response=UserOut, etag=True, tag="users")
def get_user(request):
    return user_out(request, _user(request))


@endpoint(USER, "PATCH", "Change a user's details, not the password (send If-Match with its ETag to refuse "
          "a lost update)", body=UserPatch, response=UserOut, write=True, etag=True, does="user.update",
          tag="users")
def patch_user(request):
    user = _user(request)
    check_if_match(request, user_out(request, user))
    data = body_of(request, UserPatch)
    group_id = user.group_id if data.group is None else _group_id(request, data.group)
    request.services.users.update(
        user, data.username if data.username is not None else user.username,
        role=data.role if data.role is not None else user.role,
        full_name=data.full_name if data.full_name is not None else user.full_name,
        email=data.email if data.email is not None else user.email,
        group_id=group_id, actor=request.authenticated_user)
    return user_out(request, user)


@endpoint(USER, "DELETE", "Delete a user, with their SSH keys and the access rules naming them",
          response=DeletedOut, write=True, does="user.delete", tag="users")
def delete_user(request):
    user = _user(request)
    check_if_match(request, user_out(request, user))
    name = user.username
    removed = request.services.users.delete(user, actor=request.authenticated_user)
    return {"deleted": name, "removed": removed}


@endpoint(SUSPEND, "POST", "Suspend a user: they can no longer sign in, and their sessions end",
          response=UserOut, write=True, etag=True, does="user.suspend", tag="users")
def suspend_user(request):
    user = _user(request)
    request.services.users.suspend(user, actor=request.authenticated_user)
    return user_out(request, user)


@endpoint(REINSTATE, "POST", "Reinstate a suspended user", response=UserOut, write=True, etag=True,
          does="user.reinstate", tag="users")
def reinstate_user(request):
    user = _user(request)
    request.services.users.reinstate(user)
    return user_out(request, user)


@endpoint(RESET_2FA, "POST", "Turn a user's two-factor sign-in off (they may set it up again); their "
          "sessions end", response=UserOut, write=True, etag=True, does="user.reset_2fa", tag="users")
def reset_totp(request):
    user = _user(request)
    request.services.users.reset_totp(user)
    return user_out(request, user)


@endpoint(UNLOCK, "POST", "End a user's lockout after failed sign-ins (on this node)", response=UserOut,
          write=True, etag=True, does="user.unlock", tag="users")
def unlock_user(request):
    user = _user(request)
    request.services.auth.unlock_user(user)
    return user_out(request, user)


@endpoint(RESET_PASSWORD, "POST", "Set a user's password: the one given, or a generated one returned this "
          "once; their sessions end", body=PasswordIn, response=UserWithPassword, write=True,
          does="user.password_reset", tag="users")
def reset_password(request):
    user = _user(request)
    data = body_of(request, PasswordIn)
    generated = request.services.users.reset_password(user, data.password or None)
    return {"user": user_out(request, user), "password": generated}


# -- a user's SSH keys ---------------------------------------------------------------------

@endpoint(KEYS, "GET", "A user's SSH keys (paged by name)", response=KeyPage, query=LIMIT_ONLY, tag="users")
def list_keys(request):
    user = _user(request)
    stmt = request.services.user_keys.of_user(user)
    return page_of(request, stmt, (UserKey.name, UserKey.id), lambda keys: [KeyOut.of(k) for k in keys])


@endpoint(KEYS, "POST", "Add an SSH public key to a user", body=KeyIn, response=KeyOut, status=201,
          write=True, does="user.key_add", tag="users")
def add_key(request):
    user = _user(request)
    data = body_of(request, KeyIn)
    return KeyOut.of(request.services.user_keys.add(user, data.public_key, data.name))


@endpoint(KEY, "DELETE", "Delete one of a user's SSH keys", response=DeletedOut, write=True,
          does="user.key_delete", tag="users")
def delete_key(request):
    user = _user(request)
    service = request.services.user_keys
    key = service.get(user, request.matchdict["key_id"])
    if key is None:
        raise ApiProblem(404, "The user has no SSH key with that id.")
    service.delete(key)
    return {"deleted": key.fingerprint, "removed": {}}


# -- user groups ---------------------------------------------------------------------------

def group_out(request, group: UserGroup) -> dict:
    return UserGroupOut.of(group, request.services.user_groups.member_count(group))


def _group(request) -> UserGroup:
    group = request.services.user_groups.get(request.matchdict["id"])
    if group is None:
        raise ApiProblem(404, "There is no user group with that id.")
    return group


@endpoint(GROUPS, "GET", "List user groups (paged by name)", response=UserGroupPage,
          query=_paged("text in the name"), tag="user groups")
def list_groups(request):
    service = request.services.user_groups

    def out(groups):
        members = service.member_counts(groups)
        return [UserGroupOut.of(g, members[g.id]) for g in groups]

    return page_of(request, service.search(query_text(request)), (UserGroup.name, UserGroup.id), out)


@endpoint(GROUPS, "POST", "Create a user group", body=UserGroupIn, response=UserGroupOut, status=201,
          write=True, etag=True, does="user_group.create", tag="user groups")
def create_group(request):
    data = body_of(request, UserGroupIn)
    return group_out(request, request.services.user_groups.create(data.name, data.description.strip()))


@endpoint(GROUP, "GET", "One user group", response=UserGroupOut, etag=True, tag="user groups")
def get_group(request):
    return group_out(request, _group(request))


@endpoint(GROUP, "PATCH", "Rename a user group or change its description", body=UserGroupPatch,
          response=UserGroupOut, write=True, etag=True, does="user_group.update", tag="user groups")
def patch_group(request):
    group = _group(request)
    check_if_match(request, group_out(request, group))
    data = body_of(request, UserGroupPatch)
    request.services.user_groups.update(
        group, data.name if data.name is not None else group.name,
        data.description.strip() if data.description is not None else group.description)
    return group_out(request, group)


@endpoint(GROUP, "DELETE", "Delete an empty user group, with its access and command rules",
          response=DeletedOut, write=True, does="user_group.delete", tag="user groups")
def delete_group(request):
    group = _group(request)
    check_if_match(request, group_out(request, group))
    name = group.name
    removed = request.services.user_groups.delete(group)
    return {"deleted": name, "removed": removed}


# -- this node's sign-in lockouts ------------------------------------------------------------

@endpoint(LOCKOUTS, "GET", "Who is held back from signing in on this node, and why (paged)",
          response=LockoutPage, query=LIMIT_ONLY, tag="lockouts")
def list_lockouts(request):
    limit = limit_of(request)
    after = cursor_of(request, 3)
    holds = [LockoutOut.of(h) for h in request.services.auth.throttled()]  # sorted by kind, username, address
    if after is not None:
        holds = [h for h in holds if [h["kind"], h["username"], h["address"]] > after]
    page = holds[:limit]
    last = page[-1] if page else None
    return {"items": page,
            "next_cursor": encode_cursor([last["kind"], last["username"], last["address"]])
            if len(holds) > limit else None}


@endpoint(RELEASE, "POST", "Let a locked-out address sign in again (on this node)", body=AddressIn,
          response=ReleasedOut, write=True, does="auth.release_address", tag="lockouts")
def release_address(request):
    data = body_of(request, AddressIn)
    return {"released": request.services.auth.release_address(data.address)}


# -- API tokens: listed and revoked, never made here ------------------------------------------

def _token(request) -> ApiToken:
    token = request.services.tokens.get(request.matchdict["id"])
    if token is None:
        raise ApiProblem(404, "There is no API token with that id.")
    return token


@endpoint(TOKENS, "GET", "List API tokens, never their secrets (paged by name)", response=TokenPage,
          query=_paged("text in the token's name"), tag="tokens")
def list_tokens(request):
    stmt = request.services.tokens.search(query_text(request))
    return page_of(request, stmt, (ApiToken.name, ApiToken.id), lambda tokens: [TokenOut.of(t) for t in tokens])


@endpoint(TOKEN, "GET", "One API token (never its secret)", response=TokenOut, etag=True, tag="tokens")
def get_token(request):
    return TokenOut.of(_token(request))


@endpoint(TOKEN, "DELETE", "Revoke an API token: it stops working on both nodes (a token may revoke "
          "itself)", response=DeletedOut, write=True, does="token.revoke", tag="tokens")
def revoke_token(request):
    token = _token(request)
    check_if_match(request, TokenOut.of(token))
    name = token.name
    request.services.tokens.revoke(token)
    return {"deleted": name, "removed": {}}
