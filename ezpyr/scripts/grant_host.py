"""ezpyr-grant-host CONFIG ADDRESS [--revoke]: allow (or stop allowing) an
address to call this node's cluster API."""
from __future__ import annotations

import argparse
import sys

from ezpyr.scripts.failures import one_line_errors
from ezpyr.scripts.node_env import NodeEnv
from ezpyr.validation import Invalid


@one_line_errors("ezpyr-grant-host")
def main(argv=None):
    parser = argparse.ArgumentParser(prog="ezpyr-grant-host", description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("address", help="the other node's IP address")
    parser.add_argument("--revoke", action="store_true", help="take the grant back")
    args = parser.parse_args(argv)
    env = NodeEnv(args.config)
    try:
        with env.session() as dbsession:
            service = env.services(dbsession).cluster
            if args.revoke:
                done = service.revoke(args.address)
                print(f"revoked {args.address}" if done else f"{args.address} was not granted")
            else:
                done = service.grant(args.address)
                print(f"granted {args.address}" if done else f"{args.address} was already granted")
            print("granted addresses: " + (", ".join(service.granted()) or "none"))
    except Invalid as error:
        print(f"ezpyr-grant-host: {error.message}", file=sys.stderr)
        return 2
    finally:
        env.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
