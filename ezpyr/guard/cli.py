"""``ezpyr-admin CONFIG guard …``: command guard rules on the command line."""
from __future__ import annotations

from ezpyr.cli import Admin, Done, table
from ezpyr.guard.schemas import GuardRuleOut, GuardTestOut
from ezpyr.guard.services import rule_label
from ezpyr.servers.services import plural


# -- command guard ----------------------------------------------------------------------

# --json writes the API's shapes
guard_rule_data = GuardRuleOut.of


def guard_list(a: Admin, args) -> Done:
    rules = list(a.dbsession.scalars(a.services.guard.search((args.search or "").strip())))
    text = table(["id", "user group", "pattern", "description"],
                 [[r.id, r.user_group.name, r.pattern, r.description] for r in rules],
                 "no command rules")
    return Done(text, {"command_rules": [guard_rule_data(r) for r in rules]})


def guard_add(a: Admin, args) -> Done:
    group = a.user_group(args.group)
    rule = a.services.guard.create(group.id, args.pattern, args.description or "")
    message = f"added command rule {rule.id} to user group {group.name}: {rule.pattern}"
    return Done(message, {"message": message, "command_rule": guard_rule_data(rule)})


def guard_edit(a: Admin, args) -> Done:
    rule = a.guard_rule(args.rule_id)
    old = rule_label(rule)
    group = a.user_group(args.group) if args.group is not None else rule.user_group
    a.services.guard.update(rule, group.id,
                            args.pattern if args.pattern is not None else rule.pattern,
                            args.description if args.description is not None else rule.description)
    label = rule_label(rule)
    message = f"saved command rule {rule.id} ({label})" + (f" (was {old})" if old != label else "")
    return Done(message, {"message": message, "command_rule": guard_rule_data(rule)})


def guard_delete(a: Admin, args) -> Done:
    rule = a.guard_rule(args.rule_id)
    label, rule_id = rule_label(rule), rule.id
    a.services.guard.delete(rule)
    message = f"removed command rule {rule_id} ({label})"
    return Done(message, {"message": message, "deleted": rule_id})


def guard_test(a: Admin, args) -> Done:
    service = a.services.guard
    group_id = a.user_group(args.group).id if args.group is not None else None
    verdict = service.try_command(args.command, user_group_id=group_id, username=args.user)
    data = GuardTestOut.of(verdict)
    group = f"user group {verdict.group.name}" if verdict.group else "no user group, so no rules"
    who = f"user {verdict.user.username} ({group})" if verdict.user else group
    if verdict.allowed:
        return Done(f"allowed for {who}: {plural(verdict.rule_count, 'rule')} checked, "
                    "none matches", data)
    lines = [f"refused for {who} by:"]
    lines += [f"  {r.id}  {r.pattern}" + (f"  ({r.description})" if r.description else "")
              for r in verdict.refused_by]
    return Done(lines, data, code=1)


def register(cli) -> None:
    """Adds this area's subcommands to ezpyr-admin's parser."""
    guard = cli.area("guard", "command guard rules: commands the gateway shell refuses")
    p = cli.action(guard, "list", guard_list, "every command rule, with its id")
    p.add_argument("--search", help="text in the pattern, description or group name")
    p = cli.action(guard, "add", guard_add, "refuse the commands that match a regular expression, "
                   "for one user group", does="guard.create")
    p.add_argument("--group", required=True, help="the user group's name")
    p.add_argument("--pattern", required=True,
                   help="a Python regular expression, searched anywhere in the command line")
    p.add_argument("--description", default="")
    p = cli.action(guard, "edit", guard_edit, "change a command rule (what is not given stays)",
                   does="guard.update")
    p.add_argument("rule_id", help="the rule's id, as guard list shows it")
    p.add_argument("--group", help="move the rule to this user group (its name)")
    p.add_argument("--pattern", help="the new regular expression")
    p.add_argument("--description")
    p = cli.action(guard, "delete", guard_delete, "remove a command rule", does="guard.delete")
    p.add_argument("rule_id", help="the rule's id, as guard list shows it")
    p = cli.action(guard, "test", guard_test, "whether the guard lets a command through "
                   "(exit 0: allowed, 1: refused)")
    cli.one_of(p, (["--group"], {"metavar": "NAME", "help": "a user group's rules"}),
               (["--user"], {"metavar": "USERNAME", "help": "the rules of the user's group"}))
    p.add_argument("command", help="the command line to test (quote it)")
