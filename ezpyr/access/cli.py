"""``ezpyr-admin CONFIG access …``: access rules on the command line."""
from __future__ import annotations

from ezpyr.access.schemas import AccessRuleOut, EffectiveAccessOut
from ezpyr.access.services import Subject, Target, rule_label
from ezpyr.cli import Admin, Done, table
from ezpyr.servers.services import plural


# -- access rules -------------------------------------------------------------------------

# --json writes the API's shapes
access_rule_data = AccessRuleOut.of


def access_list(a: Admin, args) -> Done:
    rules = list(a.dbsession.scalars(a.services.access.search((args.search or "").strip())))
    text = table(["id", "who", "may reach"],
                 [[r.id, r.subject_label, r.target_label] for r in rules], "no access rules")
    return Done(text, {"access_rules": [access_rule_data(r) for r in rules]})


def access_add(a: Admin, args) -> Done:
    subject = (Subject("user_group", a.user_group(args.user_group).id) if args.user_group is not None
               else Subject("user", a.user(args.user).id))
    target = (Target("server_group", a.server_group(args.server_group).id) if args.server_group is not None
              else Target("server", a.server(args.server).id))
    rule = a.services.access.create(subject, target)
    message = f"added access rule {rule.id}: {rule_label(rule)}"
    return Done(message, {"message": message, "access_rule": access_rule_data(rule)})


def access_delete(a: Admin, args) -> Done:
    rule = a.access_rule(args.rule_id)
    label, rule_id = rule_label(rule), rule.id
    a.services.access.delete(rule)
    message = f"removed access rule {rule_id}: {label}"
    return Done(message, {"message": message, "deleted": rule_id})


def access_effective(a: Admin, args) -> Done:
    user = a.user(args.username)
    reaches = a.services.access.effective_access(user)
    data = EffectiveAccessOut.of(user, reaches)
    servers = data["servers"]
    if user.suspended:
        return Done(f"{user.username} is suspended and reaches no server", data)
    if not servers:
        return Done(f"{user.username} may reach no server", data)
    lines = [f"{user.username} may reach {plural(len(servers), 'server')}:"]
    lines.append(table(["server", "address", "via"],
                       [[s["name"], f"{s['remote_user']}@{s['host']}:{s['port']}",
                         "; ".join(s["via"])] for s in servers], ""))
    return Done(lines, data)


def register(cli) -> None:
    """Adds this area's subcommands to ezpyr-admin's parser."""
    access = cli.area("access", "access rules: who may reach which servers")
    p = cli.action(access, "list", access_list, "every access rule, with its id")
    p.add_argument("--search", help="text in the user group, username or full name")
    p = cli.action(access, "add", access_add, "let a user group or a user reach a server group "
                   "or a server", does="access.create")
    cli.one_of(p, (["--user-group"], {"metavar": "NAME"}), (["--user"], {"metavar": "USERNAME"}))
    cli.one_of(p, (["--server-group"], {"metavar": "NAME"}), (["--server"], {"metavar": "NAME"}))
    p = cli.action(access, "delete", access_delete, "remove an access rule", does="access.delete")
    p.add_argument("rule_id", help="the rule's id, as access list shows it")
    p = cli.action(access, "effective", access_effective,
                   "every server a user may reach, and through which rules")
    p.add_argument("username")
