"""Starting one control-plane process: Redis (all-in-one), store, tokens, services, HTTP."""

from __future__ import annotations

import logging
import signal
import sys
from contextlib import ExitStack

import uvicorn

from control_plane.app import create_app
from control_plane.auth.tokens import bootstrap_tokens
from control_plane.config import Settings
from control_plane.queue.embedded_redis import EmbeddedRedis, port_open
from control_plane.queue.publisher import TaskPublisher
from control_plane.services.agents import AgentService
from control_plane.services.container import Services
from control_plane.services.recovery import Recovery, RecoveryLoop
from control_plane.services.submission import Submission
from control_plane.store import open_store

log = logging.getLogger("control_plane")


def build_services(settings: Settings) -> Services:
    store = open_store(settings.mongo_uri, settings.mongo_db_name, settings.resolved_sqlite_path)
    tokens = bootstrap_tokens(store, settings.admin_token, settings.enrollment_token)
    for label, token in tokens.shown_once.items():
        # Printed once to the operator's terminal, never logged; only its hash is stored.
        print(f"Generated {label}: {token}\n  (shown once; save it now)", file=sys.stderr)
    publisher = TaskPublisher(settings.broker_url(), settings.visibility_timeout)
    return Services(
        settings=settings,
        store=store,
        publisher=publisher,
        submission=Submission(store, publisher),
        agents=AgentService(store, publisher, tokens.enrollment_hash, settings.heartbeat_interval),
        admin_hash=tokens.admin_hash,
    )


def serve(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Uvicorn re-raises SIGTERM after its graceful shutdown; turning it into SystemExit
    # lets the cleanup below (embedded Redis, store) run instead of dying mid-way.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with ExitStack() as stack:
        if (
            not settings.redis_configured
            and settings.embedded_redis
            and not port_open("127.0.0.1", settings.redis_port)
        ):
            redis_server = EmbeddedRedis(settings.data_dir / "redis", settings.redis_port)
            redis_server.start()
            # Left running on purpose when this process is killed: see EmbeddedRedis.start.
            stack.callback(redis_server.stop)
        services = build_services(settings)
        stack.callback(services.store.close)
        stack.callback(services.publisher.close)
        recovery = RecoveryLoop(
            Recovery(
                services.store,
                services.publisher,
                settings.worker_timeout,
                settings.lost_message_grace,
            ),
            settings.recovery_interval,
        )
        recovery.start()
        stack.callback(recovery.stop)
        log.info(
            "control plane on http://%s:%d (store: %s, broker: %s)",
            settings.api_host,
            settings.api_port,
            "MongoDB" if settings.mongo_uri else settings.resolved_sqlite_path,
            services.publisher.safe_url,
        )
        uvicorn.run(
            create_app(services),
            host=settings.api_host,
            port=settings.api_port,
            log_level=settings.log_level.lower(),
            access_log=False,
        )
