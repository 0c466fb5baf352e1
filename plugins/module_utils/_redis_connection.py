# SPDX-License-Identifier: GPL-3.0-or-later
"""Redis connection options shared by every nodowntime.storage Redis module.

``REDIS_CONNECTION_ARGSPEC`` is merged into a module's argument spec, its documentation is the
``nodowntime.storage.redis_connection`` doc fragment. ``client_kwargs`` is a pure function (no
Ansible import) so the standalone scheduled backup script can build the very same client; this
file is installed on the host for it (``job_library``), so it imports Ansible only inside
``connect``.
"""
from __future__ import annotations

import traceback

REDIS_IMP_ERR = None
try:
    import redis  # noqa: F401  pylint: disable=unused-import
    HAS_REDIS = True
except ImportError:
    REDIS_IMP_ERR = traceback.format_exc()
    HAS_REDIS = False

# Defaults of the connection options: the argument spec and client_kwargs (which the scheduled
# script calls with its config) take them from here; the doc fragment repeats them (sanity's
# validate-modules compares the two).
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 6379
DEFAULT_CONNECT_TIMEOUT = 10.0

REDIS_CONNECTION_ARGSPEC = dict(
    login_host=dict(type="str", default=DEFAULT_HOST, aliases=["host"]),
    login_port=dict(type="int", default=DEFAULT_PORT, aliases=["port"]),
    login_unix_socket=dict(type="path", aliases=["unix_socket"]),
    login_user=dict(type="str", aliases=["username"]),
    login_password=dict(type="str", no_log=True, aliases=["password"]),
    tls=dict(type="bool", default=False),
    validate_certs=dict(type="bool", default=True),
    ca_certs=dict(type="path"),
    client_cert_file=dict(type="path"),
    client_key_file=dict(type="path"),
    connect_timeout=dict(type="float", default=DEFAULT_CONNECT_TIMEOUT),
)


def client_kwargs(params):
    """Keyword arguments for ``redis.Redis`` from the connection options in ``params``."""
    kwargs = dict(
        username=params.get("login_user") or None,
        password=params.get("login_password") or None,
        socket_connect_timeout=params.get("connect_timeout") or DEFAULT_CONNECT_TIMEOUT,
        # A backup waits for long server-side work through polling, never through one call.
        socket_timeout=max(float(params.get("connect_timeout") or DEFAULT_CONNECT_TIMEOUT), 30.0),
        decode_responses=False,
    )
    if params.get("login_unix_socket"):
        kwargs["unix_socket_path"] = params["login_unix_socket"]
    else:
        kwargs["host"] = params.get("login_host") or DEFAULT_HOST
        kwargs["port"] = int(params.get("login_port") or DEFAULT_PORT)
        if params.get("tls"):
            kwargs["ssl"] = True
            kwargs["ssl_cert_reqs"] = "required" if params.get("validate_certs", True) else "none"
            if not params.get("validate_certs", True):
                kwargs["ssl_check_hostname"] = False
            if params.get("ca_certs"):
                kwargs["ssl_ca_certs"] = params["ca_certs"]
            if params.get("client_cert_file"):
                kwargs["ssl_certfile"] = params["client_cert_file"]
            if params.get("client_key_file"):
                kwargs["ssl_keyfile"] = params["client_key_file"]
    return kwargs


def describe_endpoint(params):
    """A short human name for the server, for messages (never includes credentials)."""
    if params.get("login_unix_socket"):
        return "unix:%s" % params["login_unix_socket"]
    return "%s:%s" % (params.get("login_host") or DEFAULT_HOST, params.get("login_port") or DEFAULT_PORT)


def connect(module):
    """Return a connected ``redis.Redis`` for ``module``'s options, or fail_json clearly."""
    from ansible.module_utils.basic import missing_required_lib

    if not HAS_REDIS:
        module.fail_json(msg=missing_required_lib(
            "redis", url="https://pypi.org/project/redis/ (Debian: python3-redis)"),
            exception=REDIS_IMP_ERR)
    import redis as redis_lib

    client = redis_lib.Redis(**client_kwargs(module.params))
    try:
        client.ping()
    except redis_lib.exceptions.AuthenticationError as e:
        module.fail_json(msg="Redis at %s refused the credentials given in login_user/login_password: %s"
                         % (describe_endpoint(module.params), e))
    except redis_lib.exceptions.RedisError as e:
        module.fail_json(msg="Cannot connect to Redis at %s (login_host/login_port/login_unix_socket): %s"
                         % (describe_endpoint(module.params), e))
    return client
