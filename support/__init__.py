"""Real parts the tests and the benchmarks both start: a loopback sshd per
node for system accounts (``support.sshd``) and the gateway's accounts,
sshd instances and PTY client (``support.gateway``). Not installed with the
product; ``tests/`` and ``bench/`` import it from the checkout."""
