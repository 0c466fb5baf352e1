# SPDX-License-Identifier: GPL-3.0-or-later
"""Print JSON: how many of w:0..N-1 and key:0..K-1 are missing on the Redis at PORT."""
import json
import sys

import redis

port, n, k = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
c = redis.Redis(host="127.0.0.1", port=port)
p = c.pipeline(transaction=False)
for i in range(n):
    p.exists("w:%d" % i)
missing_w = sum(1 for x in p.execute() if not x)
p = c.pipeline(transaction=False)
for i in range(k):
    p.exists("key:%d" % i)
missing_k = sum(1 for x in p.execute() if not x)
print(json.dumps(dict(missing_writer_keys=missing_w, missing_base_keys=missing_k, dbsize=c.dbsize())))
