#!/usr/bin/env python3
# SPDX-License-Identifier: ISC
"""A small SMTP server for the tests, on loopback: it speaks the part of
RFC 5321 that libcurl uses (EHLO/HELO, MAIL FROM, RCPT TO, DATA, RSET, NOOP,
QUIT), checks the order of the commands and the addresses' syntax as a real
server would, and writes every accepted message to DIR/<n>.eml together with
its envelope (DIR/<n>.json). Standard library only.

    smtp_server.py --port-file FILE --dir DIR [--fail-first N]

--fail-first N answers "451 try again later" to the first N messages'
DATA (a temporary failure), to exercise the deliverer's retries. The chosen
port is written to --port-file once the server listens.
"""
import argparse
import asyncio
import json
import os
import re

ADDR = re.compile(r"^<([^<>\s@]+@[^<>\s@]+)>")


class Session:
    def __init__(self, server):
        self.server = server
        self.reset()
        self.greeted = False

    def reset(self):
        self.mail_from = None
        self.rcpt = []


async def handle(reader, writer, server):
    s = Session(server)

    async def reply(line):
        writer.write((line + "\r\n").encode())
        await writer.drain()

    await reply("220 mock.smtp.test ESMTP ready")
    while True:
        raw = await reader.readline()
        if not raw:
            break
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        verb = line[:4].upper()
        if verb in ("EHLO", "HELO"):
            s.greeted = True
            s.reset()
            if verb == "EHLO":
                await reply("250-mock.smtp.test")
                await reply("250-8BITMIME")
                await reply("250 SIZE 10485760")
            else:
                await reply("250 mock.smtp.test")
        elif line.upper().startswith("MAIL FROM:"):
            m = ADDR.match(line[10:].strip())
            if not s.greeted:
                await reply("503 5.5.1 EHLO first")
            elif not m:
                await reply("501 5.1.7 bad sender address")
            else:
                s.mail_from = m.group(1)
                s.rcpt = []
                await reply("250 2.1.0 ok")
        elif line.upper().startswith("RCPT TO:"):
            m = ADDR.match(line[8:].strip())
            if s.mail_from is None:
                await reply("503 5.5.1 MAIL first")
            elif not m:
                await reply("501 5.1.3 bad recipient address")
            else:
                s.rcpt.append(m.group(1))
                await reply("250 2.1.5 ok")
        elif verb == "DATA":
            if not s.rcpt:
                await reply("503 5.5.1 RCPT first")
                continue
            await reply("354 end with <CRLF>.<CRLF>")
            lines = []
            while True:
                d = await reader.readline()
                if not d:
                    return
                if d in (b".\r\n", b".\n"):
                    break
                if d.startswith(b".."):
                    d = d[1:]
                lines.append(d)
            server.seen += 1
            if server.seen <= server.fail_first:
                await reply("451 4.3.0 try again later")
            else:
                server.count += 1
                base = os.path.join(server.dir, "%04d" % server.count)
                with open(base + ".eml", "wb") as f:
                    f.write(b"".join(lines))
                with open(base + ".json", "w") as f:
                    json.dump({"mail_from": s.mail_from, "rcpt": s.rcpt}, f)
                await reply("250 2.0.0 queued as %d" % server.count)
            s.reset()
        elif verb == "RSET":
            s.reset()
            await reply("250 2.0.0 ok")
        elif verb == "NOOP":
            await reply("250 2.0.0 ok")
        elif verb == "QUIT":
            await reply("221 2.0.0 bye")
            break
        else:
            await reply("502 5.5.2 command not recognised")
    writer.close()


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port-file", required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--fail-first", type=int, default=0)
    a = p.parse_args()

    class S:
        pass

    server = S()
    server.dir, server.fail_first, server.seen, server.count = a.dir, a.fail_first, 0, 0
    srv = await asyncio.start_server(lambda r, w: handle(r, w, server), "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(port))
    os.rename(tmp, a.port_file)
    async with srv:
        await srv.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
