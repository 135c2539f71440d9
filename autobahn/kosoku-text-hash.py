"""Mends kosoku 0.1.0's permessage-deflate cases (12.*, 13.*) for text.

kosoku hands `onMessage` a text message as a `str`, but its case 12/13
code hashes the message with `hashlib.sha1().update(msg)` and then calls
`msg.decode('utf-8')`, both of which need `bytes`: every text case of
those groups ends in ERROR ("Strings must be encoded before hashing")
whatever the server sends. The upstream Autobahn TestSuite hands `bytes`.
This rewrites the two lines to accept either, so the cases judge the
server again. Idempotent; fails loudly if the file is not the one it
knows. Run by scripts/setup.sh after installing kosoku.
"""

import pathlib
import sys

import kosoku.cases.case12_x_x as case

path = pathlib.Path(case.__file__)
source = path.read_text()
old = """def onMessage(self, msg, binary):
   m = hashlib.sha1()
   m.update(msg)
   received_hash = m.digest()
   if not self.TESTDATA['binary']:
      msg = msg.decode('utf-8')
"""
new = """def onMessage(self, msg, binary):
   if isinstance(msg, str):  # duplex: kosoku hands text as str
      msg = msg.encode('utf-8')
   m = hashlib.sha1()
   m.update(msg)
   received_hash = m.digest()
   if not self.TESTDATA['binary']:
      msg = msg.decode('utf-8')
"""
if new in source:
    sys.exit(0)
if old not in source:
    sys.exit(f"{path}: not the kosoku 0.1.0 code this mends; check it by hand")
path.write_text(source.replace(old, new))
print(f"mended {path} (text messages in cases 12.*, 13.*)")
