"""A TCP forwarder run as its own process: ``python tcp_forwarder.py
LISTEN_PORT TARGET_HOST TARGET_PORT``. Tests put it between a worker and
RabbitMQ; stopping it with SIGSTOP is a dead network link (the sockets
stay open, no byte flows, nobody is told), and SIGKILL ends every
connection through it at once."""
from __future__ import annotations

import selectors
import socket
import sys


def main(listen_port: int, host: str, port: int) -> None:
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", listen_port))
    server.listen(64)
    server.setblocking(False)
    selector = selectors.DefaultSelector()
    selector.register(server, selectors.EVENT_READ, None)
    print("forwarding", flush=True)
    while True:
        for key, _ in selector.select():
            if key.data is None:
                client, _ = server.accept()
                try:
                    upstream = socket.create_connection((host, port))
                except OSError:
                    client.close()
                    continue
                selector.register(client, selectors.EVENT_READ, upstream)
                selector.register(upstream, selectors.EVENT_READ, client)
                continue
            source, sink = key.fileobj, key.data
            try:
                data = source.recv(65536)
            except OSError:
                data = b""
            if data:
                try:
                    sink.sendall(data)
                    continue
                except OSError:
                    pass
            for end in (source, sink):
                try:
                    selector.unregister(end)
                except (KeyError, ValueError):
                    pass
                end.close()


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2], int(sys.argv[3]))
