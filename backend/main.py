"""Application factory and server entry point of the backend.

``create_app(settings)`` builds one FastAPI application (used by tests and by uvicorn's
``--factory``); ``serve(settings)`` runs it under uvicorn with the settings' limits, which
is what ``python -m backend`` and the devstack do.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Final

import uvicorn
from anyio import CapacityLimiter
from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from starlette.concurrency import run_in_threadpool

import backend
from backend.api.deps import AppContext
from backend.api.limits import BodySizeLimitMiddleware
from backend.api.main import API_PREFIX, api_router
from backend.api.routes import ipfs
from backend.api.routes.models import MODEL_MAX_BODY_BYTES
from backend.api.routes.uploads import UPLOADS_PATH, TusHeadersMiddleware
from backend.api.web import include_web_app
from backend.core.background import BackgroundRunner
from backend.core.chain import create_web3
from backend.core.config import Settings
from backend.core.db import create_db_engine
from backend.core.migrate import upgrade_to_head
from backend.errors import register_error_handlers
from backend.services.blobs import Quarantine
from backend.services.chainsync import ChainSync
from backend.services.consensus import run_due
from backend.services.datasets import pack_next
from backend.services.epochs import CloseScheduler
from backend.services.housekeeping import run_housekeeping
from backend.services.ingest import ingest_once
from backend.services.licences import Lister
from backend.services.submitter import Submitter
from ingest.blobstore import LocalBlobStore

logger = logging.getLogger(__name__)

#: Largest body of ``POST /validator/reports`` (a ClipScores at its bounds is ~150 KB).
REPORT_MAX_BODY_BYTES: Final = 256 * 1024
#: How long shutdown waits for background jobs to finish their current step.
BACKGROUND_STOP_TIMEOUT_S: Final = 10.0
#: Longest wait between two checks whether the open epoch is due to close.
EPOCH_CHECK_MAX_S: Final = 60.0


def background_jobs(context: AppContext) -> BackgroundRunner:
    """The process's background jobs (not started): ``ingest_workers`` ingest loops,
    the housekeeping job (upload expiry, stale ingest claims, leftover files), the
    consensus job (expired leases, clips past their consensus deadline), the chain
    sync (the validator stake snapshot, the reward events), the epoch close schedule,
    the root submitter, the dataset packer and the dataset lister."""
    settings, engine, blobs = context.settings, context.engine, context.blobs
    runner = BackgroundRunner()
    for number in range(settings.ingest_workers):
        runner.add_loop(
            f"ingest-{number}",
            partial(ingest_once, engine, settings=settings, blobs=blobs),
            idle_s=settings.ingest_poll_s,
        )
    runner.add_periodic(
        "housekeeping",
        partial(run_housekeeping, engine, settings=settings, blobs=blobs),
        interval_s=settings.housekeeping_interval_s,
    )
    # Leases past their expiry, clips past their consensus deadline.
    runner.add_periodic(
        "consensus",
        partial(run_due, engine),
        interval_s=settings.consensus_interval_s,
    )
    # The validator stake snapshot (backend.services.chainsync); survives a down node.
    runner.add_loop("chain-sync", ChainSync(engine, settings).step, idle_s=settings.chain_poll_s)
    # Reward epochs close on schedule from the database alone (backend.services.epochs).
    runner.add_periodic(
        "epochs",
        CloseScheduler(engine, settings).run,
        interval_s=min(EPOCH_CHECK_MAX_S, settings.epoch_length_s / 10),
    )
    # Roots to the chain, emission draws, epoch statuses (backend.services.submitter).
    runner.add_loop("submitter", Submitter(engine, settings).step, idle_s=settings.chain_poll_s)
    # Frozen dataset versions into shards; resumes a version a restart interrupted.
    runner.add_loop(
        "datasets",
        partial(pack_next, engine, settings=settings, blobs=blobs),
        idle_s=settings.dataset_poll_s,
    )
    # Ready priced versions onto the DatasetMarket via the operator outbox, including
    # any a crash left unlisted (backend.services.licences; the submitter sends them).
    runner.add_loop("dataset-listing", Lister(engine, settings).step, idle_s=settings.chain_poll_s)
    return runner


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the backend application; ``settings`` default to the environment's.

    Nothing connects here: the database is migrated (when ``auto_migrate``) as the app
    starts up, and its connections are closed when it shuts down.
    """
    settings = settings if settings is not None else Settings()
    engine = create_db_engine(settings)
    context = AppContext(
        settings=settings,
        engine=engine,
        w3=create_web3(settings),
        blobs=LocalBlobStore(settings.blob_path),
        quarantine=Quarantine(engine),
        db_slots=CapacityLimiter(settings.db_pool_size + settings.db_max_overflow),
    )

    runner = background_jobs(context)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            if settings.auto_migrate:
                await run_in_threadpool(upgrade_to_head, context.engine)
                logger.info("database migrated to head (%s)", settings.database_url_display)
            runner.start()
            yield
        finally:
            await run_in_threadpool(runner.stop, BACKGROUND_STOP_TIMEOUT_S)
            context.engine.dispose()

    # Swagger UI and ReDoc from assets shipped in the package, not a CDN: the docs work
    # offline and the browser fetches no third-party script.
    app = FastAPIOffline(
        title="Shotbank",
        summary="Marketplace for annotated video clips that train video-generation models.",
        version=backend.__version__,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url="/redoc",
        static_url="/static/docs",
        lifespan=lifespan,
    )
    app.state.context = context
    app.state.background = runner
    register_error_handlers(app)
    app.include_router(api_router, prefix=API_PREFIX)
    # Outside /api/v1, where IPFS gateways serve content: /ipfs/<cid>.
    app.include_router(ipfs.router)
    # Last: the web app's catch-all must never shadow an API route.
    include_web_app(app, settings.web_path)
    app.add_middleware(TusHeadersMiddleware, prefix=API_PREFIX + UPLOADS_PATH)
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_bytes=settings.max_request_body_bytes,
        exclude_prefix=API_PREFIX + UPLOADS_PATH,
        prefix_limits={
            API_PREFIX + "/clips": settings.clip_max_request_body_bytes,
            # A report carries a whole ClipScores: reasons per component and an embedding.
            API_PREFIX + "/validator/reports": REPORT_MAX_BODY_BYTES,
            # A run record carries its evaluations and hyperparameters.
            API_PREFIX + "/models": MODEL_MAX_BODY_BYTES,
        },
    )
    return app


def serve(settings: Settings | None = None) -> None:
    """Run the backend under uvicorn until it is told to stop (SIGINT/SIGTERM)."""
    settings = settings if settings is not None else Settings()
    # uvicorn configures only its own loggers; the backend's share its format.
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(levelname)-9s %(name)s: %(message)s"
    )
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        limit_concurrency=settings.max_concurrency,
        timeout_keep_alive=settings.keep_alive_timeout_s,
        timeout_graceful_shutdown=10,
        server_header=False,
        proxy_headers=False,
    )
