"""aiosmtpd instances for the interop tests.

Three listeners on 127.0.0.1:
  --port       plain SMTP offering STARTTLS; AUTH PLAIN/LOGIN offered only after STARTTLS
  --tls-port   implicit TLS; AUTH PLAIN/LOGIN offered at once
  --mtls-port  implicit TLS requiring a client certificate signed by --client-ca

Every accepted message is saved in --spool as <id>.eml (the exact bytes received, after
dot-unstuffing, CRLF kept) and <id>.env (envelope, one "key: value" per line). The .eml appears
last (written then renamed). Recipients whose local part starts with "reject" get 550 at RCPT,
"defer" 451. The pid file is written once every listener is up.
"""

import argparse
import asyncio
import itertools
import os
import signal
import ssl

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

COUNTER = itertools.count(1)


class Handler:
    def __init__(self, name, spool):
        self.name = name
        self.spool = spool

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0].lower()
        if local.startswith("reject"):
            return f"550 5.1.1 <{address}>: Recipient address rejected (interop)"
        if local.startswith("defer"):
            return f"451 4.2.1 <{address}>: Recipient deferred (interop)"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.append(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        ident = f"{self.name}-{os.getpid()}-{next(COUNTER)}"
        auth = session.auth_data
        user = auth.login.decode("utf-8", "replace") if isinstance(auth, LoginPassword) else ""
        lines = [
            f"server: {self.name}",
            f"mail_from: {envelope.mail_from}",
            f"mail_args: {' '.join(envelope.mail_options)}",
            *[f"rcpt: {r}" for r in envelope.rcpt_tos],
            f"auth_user: {user}",
            f"tls: {'yes' if session.ssl is not None else 'no'}",
            f"smtputf8: {'yes' if envelope.smtp_utf8 else 'no'}",
        ]
        with open(os.path.join(self.spool, ident + ".env"), "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        tmp = os.path.join(self.spool, "." + ident + ".tmp")
        with open(tmp, "wb") as f:
            f.write(envelope.original_content)
        os.rename(tmp, os.path.join(self.spool, ident + ".eml"))
        return f"250 2.0.0 OK: queued as {ident}"


def make_authenticator(user, password):
    def authenticate(server, session, envelope, mechanism, auth_data):
        if (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == user.encode()
            and auth_data.password == password.encode()
        ):
            return AuthResult(success=True, auth_data=auth_data)
        return AuthResult(
            success=False,
            handled=False,
            message="535 5.7.8 Authentication credentials invalid (interop)",
        )

    return authenticate


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--tls-port", type=int, required=True)
    p.add_argument("--mtls-port", type=int, required=True)
    p.add_argument("--client-ca", required=True)
    p.add_argument("--spool", required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--size", type=int, default=1048576)
    p.add_argument("--user", default="alice@example.com")
    p.add_argument("--password", default="Secret-pa55")
    p.add_argument("--pidfile")
    a = p.parse_args()

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(a.cert, a.key)
    auth = make_authenticator(a.user, a.password)

    def factory(name, **kw):
        return lambda: SMTP(
            Handler(name, a.spool),
            hostname="aiosmtpd.interop.test",
            data_size_limit=a.size,
            enable_SMTPUTF8=True,
            authenticator=auth,
            auth_exclude_mechanism=[],
            **kw,
        )

    loop = asyncio.get_running_loop()
    plain = await loop.create_server(
        factory("aiosmtpd", tls_context=ctx), "127.0.0.1", a.port
    )
    tls = await loop.create_server(
        factory("aiosmtpd-tls", auth_require_tls=False), "127.0.0.1", a.tls_port, ssl=ctx
    )
    # Mutual TLS: implicit TLS that requires a client certificate signed by the test CA.
    mctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    mctx.load_cert_chain(a.cert, a.key)
    mctx.load_verify_locations(a.client_ca)
    mctx.verify_mode = ssl.CERT_REQUIRED
    mtls = await loop.create_server(
        factory("aiosmtpd-mtls", auth_require_tls=False), "127.0.0.1", a.mtls_port, ssl=mctx
    )
    if a.pidfile:
        with open(a.pidfile, "w") as f:
            f.write(f"{os.getpid()}\n")
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    plain.close()
    tls.close()
    mtls.close()


if __name__ == "__main__":
    asyncio.run(main())
