"""Registered models and their lineage (``docs/api/models.md``).

A model fine-tuned on marketplace data is registered with its run record
(:class:`shotbank.runs.RunRecord`, ``run.json``) and known afterwards by its **hash**, the
SHA-256 of its weights file. Its **lineage** is the dataset versions it was trained on
and the contributors (with sample counts) behind them.

Entry points are :class:`~shotbank.client.ShotbankClient`'s ``register_model(record)``,
``model(hash)``, ``models(...)`` and ``lineage(hash)``, which call the functions here.
Registering needs a signed-in wallet that holds a licence for the run's dataset version
(402 ``licence_required`` otherwise, as for a shard download); reading is public.
Registering is idempotent: the same record by the same wallet answers the same model
(so the request is retried like a read); 409 ``model_exists`` when the hash is
registered with another record or by another wallet.

Answers ignore members they do not know (a newer server does not break this SDK); the
parts copied from the run record are the record's own models.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field

from shotbank.client.errors import UnexpectedResponseError
from shotbank.runs import MAX_RUN_RECORD_BYTES, BaseModelInfo, EvalMetrics, OutputWeights, RunRecord

if TYPE_CHECKING:
    from shotbank.client.api import ShotbankClient

__all__ = [
    "DEFAULT_LINEAGE_LIMIT",
    "MAX_LINEAGE_LIMIT",
    "MAX_MODEL_PAGE",
    "ContributorSamples",
    "DatasetVersionRef",
    "Lineage",
    "LineageVersion",
    "Model",
    "ModelMetrics",
    "ModelPage",
    "get_lineage",
    "get_model",
    "lineage_path",
    "list_models",
    "register_model",
]

#: Most models on one ``GET /models`` page.
MAX_MODEL_PAGE: Final = 100
#: Bounds of ``GET /models/{hash}/lineage?limit=`` (contributors per list).
DEFAULT_LINEAGE_LIMIT: Final = 1000
MAX_LINEAGE_LIMIT: Final = 10_000
#: Most dataset versions one model names (a run record names one).
_MAX_VERSIONS: Final = 1000
_HASH: Final = re.compile(r"^[0-9a-f]{64}$")
_ADDRESS: Final = re.compile(r"^0x[0-9a-fA-F]{40}$")


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class DatasetVersionRef(_Answer):
    """A dataset version a model was trained on."""

    dataset_id: str = Field(max_length=32)
    number: int
    version_hash: str = Field(max_length=64)


class ModelMetrics(_Answer):
    """Held-out retrieval of the base model (step 0) and of the fine-tuned one."""

    base: EvalMetrics
    final: EvalMetrics


class Model(_Answer):
    """A registered model (``ModelView``): what it was fine-tuned from, on, and how."""

    hash: str = Field(max_length=64)
    """SHA-256 of the output weights file: the model's name in the API."""
    registrant: str = Field(max_length=42)
    base_model: BaseModelInfo
    hyperparameters: dict[str, Any]
    metrics: ModelMetrics
    output: OutputWeights
    dataset_versions: list[DatasetVersionRef] = Field(max_length=_MAX_VERSIONS)
    registered_at: datetime
    started_at: datetime
    finished_at: datetime


class ModelPage(_Answer):
    """One page of ``GET /models``, newest first; pass ``next_before`` as ``before``."""

    models: list[Model] = Field(max_length=MAX_MODEL_PAGE)
    next_before: str | None = Field(default=None, max_length=64)


class ContributorSamples(_Answer):
    """A contributor and how many samples of theirs a version (or all versions) hold."""

    address: str = Field(max_length=42)
    samples: int


class LineageVersion(_Answer):
    """One dataset version behind a model, with its contributors."""

    dataset_id: str = Field(max_length=32)
    number: int
    version_hash: str = Field(max_length=64)
    samples: int
    contributors: list[ContributorSamples] = Field(max_length=MAX_LINEAGE_LIMIT)
    """By sample count, descending, then address."""


class Lineage(_Answer):
    """The dataset versions and contributors behind a registered model."""

    model: str = Field(max_length=64)
    dataset_versions: list[LineageVersion] = Field(max_length=_MAX_VERSIONS)
    contributors: list[ContributorSamples] = Field(max_length=MAX_LINEAGE_LIMIT)
    """Summed over the versions; by sample count, descending, then address."""
    truncated: bool = False
    """Whether a list was cut at the request's ``limit``."""


def _model_hash(value: str) -> str:
    if not isinstance(value, str) or not _HASH.match(value):
        raise ValueError(f"not a model hash (64 lower-case hex digits): {value!r}")
    return value


def lineage_path(model_hash: str) -> str:
    """The lineage's path under the API root: ``/api/v1/models/<hash>/lineage``."""
    from shotbank.client.api import API_PREFIX

    return f"{API_PREFIX}/models/{_model_hash(model_hash)}/lineage"


def register_model(client: ShotbankClient, record: RunRecord | Mapping[str, Any]) -> Model:
    """``POST /models``: register the run ``record``; the model (201 new, 200 again)."""
    parsed = record if isinstance(record, RunRecord) else RunRecord.model_validate(record)
    # model_dump_json writes non-finite floats (a diverged loss) as null, as JSON must.
    body = parsed.model_dump_json().encode()
    if len(body) > MAX_RUN_RECORD_BYTES:
        raise ValueError(
            f"the run record is {len(body)} bytes of JSON, over the backend's limit of "
            f"{MAX_RUN_RECORD_BYTES}: evaluate less often"
        )
    response = client._request(
        "POST",
        "/models",
        idempotent=True,  # the same record again answers the same model
        auth=False,
        access=True,  # the session, or a signed request when the client signs them
        content=body,
        headers={"Content-Type": "application/json"},
    )
    return client._parse(Model, response)


def get_model(client: ShotbankClient, model_hash: str) -> Model:
    """``GET /models/{hash}`` (public); 404 ``model_not_found`` for an unknown hash."""
    path = f"/models/{quote(_model_hash(model_hash), safe='')}"
    return client._parse(Model, client._request("GET", path, idempotent=True, auth=False))


def list_models(
    client: ShotbankClient,
    *,
    registrant: str | None = None,
    limit: int = 20,
    before: str | None = None,
) -> ModelPage:
    """``GET /models``: registered models, newest first, ``limit`` (1..100) of them,
    registered before the model ``before``, optionally only ``registrant``'s."""
    if not 1 <= limit <= MAX_MODEL_PAGE:
        raise ValueError(f"limit must be within 1..{MAX_MODEL_PAGE}")
    params: dict[str, str | int] = {"limit": limit}
    if registrant is not None:
        if not _ADDRESS.match(registrant):
            raise ValueError(f"not a 20-byte hex address: {registrant!r}")
        params["registrant"] = registrant
    if before is not None:
        params["before"] = _model_hash(before)
    response = client._request("GET", "/models", idempotent=True, auth=False, params=params)
    return client._parse(ModelPage, response)


def get_lineage(
    client: ShotbankClient, model_hash: str, *, limit: int = DEFAULT_LINEAGE_LIMIT
) -> Lineage:
    """``GET /models/{hash}/lineage`` (public): versions and contributors behind a model;
    each list holds at most ``limit`` (1..10000) entries."""
    if not 1 <= limit <= MAX_LINEAGE_LIMIT:
        raise ValueError(f"limit must be within 1..{MAX_LINEAGE_LIMIT}")
    path = f"/models/{quote(_model_hash(model_hash), safe='')}/lineage"
    response = client._request("GET", path, idempotent=True, auth=False, params={"limit": limit})
    lineage = client._parse(Lineage, response)
    if lineage.model != model_hash:
        raise UnexpectedResponseError(f"GET {path} answered the lineage of another model")
    return lineage
