"""A forwarder run as its own process, in front of a node's panel:
``python tls_forwarder.py LISTEN_PORT TARGET_PORT [--tls CERT KEY]
[--record FILE]``. With --tls it terminates TLS (what a reverse proxy does
in production); with --record it appends every byte it passes, both ways,
to FILE, so a test can read what crossed the network."""
from __future__ import annotations

import argparse
import socket
import ssl
import threading


def pump(source, sink, record, lock):
    try:
        while True:
            data = source.recv(65536)
            if not data:
                break
            if record is not None:
                with lock:
                    record.write(data)
                    record.flush()
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for end in (source, sink):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def serve(client, target, context, record, lock):
    try:
        if context is not None:
            client = context.wrap_socket(client, server_side=True)
        upstream = socket.create_connection(("127.0.0.1", target))
    except (OSError, ssl.SSLError):
        client.close()
        return
    threading.Thread(target=pump, args=(upstream, client, record, lock), daemon=True).start()
    pump(client, upstream, record, lock)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("listen", type=int)
    parser.add_argument("target", type=int)
    parser.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    parser.add_argument("--record")
    args = parser.parse_args()
    context = None
    if args.tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*args.tls)
    record = open(args.record, "ab") if args.record else None
    lock = threading.Lock()
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", args.listen))
    server.listen(64)
    print("forwarding", flush=True)
    while True:
        client, _ = server.accept()
        threading.Thread(target=serve, args=(client, args.target, context, record, lock), daemon=True).start()


if __name__ == "__main__":
    main()
