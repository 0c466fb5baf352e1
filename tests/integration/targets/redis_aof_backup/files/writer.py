# SPDX-License-Identifier: GPL-3.0-or-later
"""Write w:0, w:1, ... to Redis until killed; every 50 acknowledged writes record the count."""
import os
import sys

import redis

port, progress = int(sys.argv[1]), sys.argv[2]
with open(progress + ".pid", "w") as f:
    f.write(str(os.getpid()))
c = redis.Redis(host="127.0.0.1", port=port)
i = 0
while True:
    if i % 3 == 0:  # some writes in MULTI/EXEC
        p = c.pipeline(transaction=True)
        p.set("w:%d" % i, i)
        p.incr("counter")
        p.execute()
    else:
        c.set("w:%d" % i, i)
    i += 1
    if i % 50 == 0:
        with open(progress + ".tmp", "w") as f:
            f.write(str(i))
        os.replace(progress + ".tmp", progress)
