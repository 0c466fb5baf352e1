# SPDX-License-Identifier: GPL-3.0-or-later
"""sums.py DIR: {relative name: sha1} of every regular file under DIR (JSON)."""
import hashlib
import json
import os
import sys

root = sys.argv[1]
sums = {}
for top, dirs, files in os.walk(root):
    for name in files:
        path = os.path.join(top, name)
        with open(path, "rb") as f:
            sums[os.path.relpath(path, root)] = hashlib.sha1(f.read()).hexdigest()
print(json.dumps(sums, sort_keys=True))
