"""``ezpyr-admin CONFIG guard …``: command guard rules on the command line."""
from __future__ import annotations

from ezpyr.cli import Admin, Done, table
from ezpyr.servers.services import plural


# -- command guard ----------------------------------------------------------------------

def guard_rule_data(rule) -> dict:
    return {"id": rule.id, "group": rule.user_group.name, "pattern": rule.pattern,
            "description": rule.description}


def guard_list(a: Admin, args) -> Done:
    rules = [guard_rule_data(r) for g in a.services.guard.grouped(
        (args.search or "").strip()) for r in g.rules]
    text = table(["id", "user group", "pattern", "description"],
                 [[r["id"], r["group"], r["pattern"], r["description"]] for r in rules],
                 "no command rules")
    return Done(text, {"command_rules": rules})


def guard_add(a: Admin, args) -> Done:
    group = a.user_group(args.group)
    rule = a.services.guard.create(group.id, args.pattern, args.description or "")
    label = f"{rule.user_group.name}: {rule.pattern}"
    a.record("guard.create", label)
    message = f"added command rule {rule.id} to user group {group.name}: {rule.pattern}"
    return Done(message, {"message": message, "command_rule": guard_rule_data(rule)})


def guard_delete(a: Admin, args) -> Done:
    rule = a.guard_rule(args.rule_id)
    label, rule_id = f"{rule.user_group.name}: {rule.pattern}", rule.id
    a.services.guard.delete(rule)
    a.record("guard.delete", label)
    message = f"removed command rule {rule_id} ({label})"
    return Done(message, {"message": message, "deleted": rule_id})


def guard_test(a: Admin, args) -> Done:
    service = a.services.guard
    group_id = a.user_group(args.group).id if args.group is not None else None
    verdict = service.try_command(args.command, user_group_id=group_id, username=args.user)
    data = {"command": verdict.command, "allowed": verdict.allowed,
            "group": verdict.group.name if verdict.group else None,
            "user": verdict.user.username if verdict.user else None,
            "rules_checked": verdict.rule_count,
            "refused_by": [guard_rule_data(r) for r in verdict.refused_by]}
    group = f"user group {verdict.group.name}" if verdict.group else "no user group, so no rules"
    who = f"user {verdict.user.username} ({group})" if verdict.user else group
    if verdict.allowed:
        return Done(f"allowed for {who}: {plural(verdict.rule_count, 'rule')} checked, "
                    "none matches", data)
    lines = [f"refused for {who} by:"]
    lines += [f"  {r['id']}  {r['pattern']}" + (f"  ({r['description']})" if r["description"]
                                                else "") for r in data["refused_by"]]
    return Done(lines, data, code=1)


def register(cli) -> None:
    """Adds this area's subcommands to ezpyr-admin's parser."""
    guard = cli.area("guard", "command guard rules: commands the gateway shell refuses")
    p = cli.action(guard, "list", guard_list, "every command rule, with its id")
    p.add_argument("--search", help="text in the pattern, description or group name")
    p = cli.action(guard, "add", guard_add, "refuse the commands that match a regular expression, "
                   "for one user group")
    p.add_argument("--group", required=True, help="the user group's name")
    p.add_argument("--pattern", required=True,
                   help="a Python regular expression, searched anywhere in the command line")
    p.add_argument("--description", default="")
    p = cli.action(guard, "delete", guard_delete, "remove a command rule")
    p.add_argument("rule_id", help="the rule's id, as guard list shows it")
    p = cli.action(guard, "test", guard_test, "whether the guard lets a command through "
                   "(exit 0: allowed, 1: refused)")
    cli.one_of(p, (["--group"], {"metavar": "NAME", "help": "a user group's rules"}),
               (["--user"], {"metavar": "USERNAME", "help": "the rules of the user's group"}))
    p.add_argument("command", help="the command line to test (quote it)")
