#!/usr/bin/env python3
# SPDX-License-Identifier: ISC
"""Verify an ImmiDB access-log export with standard tools only.

    python3 verify-access-log.py EXPORT.ndjson PUBLIC_KEY [--checkpoint NOTE_FILE]

EXPORT.ndjson   GET /api/v1/orgs/<org>/access-log/export (or immidb-admin log export)
PUBLIC_KEY      "public_key" of GET /api/v1/log-key (base64 of 32 bytes), kept by
                the organization from before
NOTE_FILE       a signed checkpoint note saved earlier (a notification, or
                GET .../access-log/checkpoint): the export must contain it

It recomputes every entry's hash as docs/security.md (and storage.md) define
it, checks that seq runs 1..N without a gap and that each prev_hash is the
hash before it, then checks the export's final checkpoint line (and the saved
note, if given): the Ed25519 signature with the `openssl` command, the key
hash, and that the export's entry <size> has the checkpoint's head hash.
Python's standard library has SHA-256 but no Ed25519, hence openssl.

Exit 0 and "ok: N entries, head <hex>" when everything holds; exit 1 with a
line naming the first bad seq (or the bad checkpoint) otherwise.
"""
import base64
import hashlib
import json
import os
import struct
import subprocess
import sys
import tempfile

DOMAIN = b"immidb-access-log-v1\n"
SPKI_ED25519 = bytes.fromhex("302a300506032b6570032100")


def field(value):
    data = value.encode("utf-8")
    return struct.pack(">I", len(data)) + data


def entry_hash(prev, e):
    a = e["actor"]
    parts = [str(e["seq"]), e["at"], a["kind"], a["id"], a["email"], e["via"], e["ip"],
             e["action"], e["target"], e["reason"], e["outcome"], e["detail"]]
    return hashlib.sha256(DOMAIN + prev + b"".join(field(p) for p in parts)).digest()


def fail(msg):
    print("FAILED: " + msg)
    sys.exit(1)


def ed25519_verify(pk, message, signature):
    """True if openssl says the signature is good."""
    pem = b"-----BEGIN PUBLIC KEY-----\n" + base64.encodebytes(SPKI_ED25519 + pk) + b"-----END PUBLIC KEY-----\n"
    with tempfile.TemporaryDirectory() as d:
        paths = {}
        for name, data in (("key.pem", pem), ("msg", message), ("sig", signature)):
            paths[name] = os.path.join(d, name)
            with open(paths[name], "wb") as f:
                f.write(data)
        r = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", paths["key.pem"],
                            "-rawin", "-in", paths["msg"], "-sigfile", paths["sig"]],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        return r.returncode == 0 and b"Signature Verified Successfully" in r.stdout


def check_note(note, pk, hashes, label):
    """Checks a signed checkpoint note against the key and the export's hashes."""
    lines = note.split("\n")
    if len(lines) < 6 or lines[3] != "" or not lines[4].startswith("\u2014 "):
        fail(label + ": not a signed note")
    origin, size_text, head_b64 = lines[0], lines[1], lines[2]
    message = (origin + "\n" + size_text + "\n" + head_b64 + "\n").encode("utf-8")
    try:
        _, name, sig_b64 = lines[4].split(" ")
        sig = base64.b64decode(sig_b64, validate=True)
        size = int(size_text)
        head = base64.b64decode(head_b64, validate=True)
    except ValueError:
        fail(label + ": malformed note")
    key_hash = hashlib.sha256(name.encode("utf-8") + b"\n\x01" + pk).digest()[:4]
    if len(sig) != 68 or sig[:4] != key_hash:
        fail(label + ": signed by another key (key hash differs)")
    if not ed25519_verify(pk, message, sig[4:]):
        fail(label + ": bad signature")
    if size < 0 or size > len(hashes):
        fail(label + ": size %d is beyond the export's %d entries" % (size, len(hashes)))
    if size > 0 and hashes[size - 1] != head:
        fail(label + ": entry %d of the export does not have the checkpoint's head: "
             "first bad seq %d or earlier" % (size, size))
    return size


def main(argv):
    if len(argv) not in (3, 5) or (len(argv) == 5 and argv[3] != "--checkpoint"):
        print(__doc__)
        return 2
    try:
        pk = base64.b64decode(argv[2], validate=True)
    except ValueError:
        pk = b""
    if len(pk) != 32:
        print("PUBLIC_KEY must be the base64 of 32 bytes")
        return 2
    hashes, checkpoint = [], None
    prev, expect = bytes(32), 1
    with open(argv[1], "rb") as f:
        for raw in f:
            try:
                e = json.loads(raw.decode("utf-8"))
            except ValueError:
                fail("line %d is not JSON: first bad seq %d" % (expect, expect))
            if "checkpoint" in e and len(e) == 1:
                checkpoint = e["checkpoint"]
                continue
            if checkpoint is not None:
                fail("entries after the checkpoint line: first bad seq %d" % expect)
            try:
                seq, given, given_prev = e["seq"], bytes.fromhex(e["hash"]), bytes.fromhex(e["prev_hash"])
                h = entry_hash(prev, e)
            except (KeyError, TypeError, ValueError, AttributeError):
                fail("entry %d is malformed: first bad seq %d" % (expect, expect))
            if seq != expect or given_prev != prev or h != given:
                fail("first bad seq %d" % expect)
            hashes.append(h)
            prev, expect = h, expect + 1
    if checkpoint is None:
        fail("no checkpoint line at the end of the export")
    size = check_note(checkpoint.get("note", ""), pk, hashes, "export checkpoint")
    if size != checkpoint.get("size") or (size > 0 and hashes[size - 1].hex() != checkpoint.get("head")):
        fail("the checkpoint line's size/head differ from its signed note")
    if len(argv) == 5:
        with open(argv[4], "r", encoding="utf-8") as f:
            saved = check_note(f.read(), pk, hashes, "saved checkpoint")
        print("saved checkpoint of size %d is consistent with this export" % saved)
    print("ok: %d entries, head %s" % (len(hashes), prev.hex()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
