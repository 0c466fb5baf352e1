# SPDX-License-Identifier: GPL-3.0-or-later
"""Write a burst: burst.py DIR COUNT.

Writes COUNT small files of random content into DIR (the second half into a new directory
DIR/burst-dir) spread over about one second, then stops, and prints {relative name: sha1} (JSON).
"""
import hashlib
import json
import os
import sys
import time

root, count = sys.argv[1], int(sys.argv[2])
os.mkdir(os.path.join(root, "burst-dir"))
sums = {}
for i in range(count):
    name = "burst-%04d" % i if i < count // 2 else "burst-dir/burst-%04d" % i
    data = os.urandom(64 + i)
    with open(os.path.join(root, name), "wb") as f:
        f.write(data)
    sums[name] = hashlib.sha1(data).hexdigest()
    time.sleep(1.0 / count)
print(json.dumps(sums, sort_keys=True))
