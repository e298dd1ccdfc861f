"""The backend's HTTP API from Python: sign in, upload (tus), submit and follow clips.

- :mod:`~shotbank.client.api` -- :class:`ShotbankClient`
- :mod:`~shotbank.client.uploads` -- resumable uploads with tuspy (sha256 checksums)
- :mod:`~shotbank.client.keys` -- a wallet's key from a key file or hex
- :mod:`~shotbank.client.settings` -- :class:`ClientSettings` (``SHOTBANK_*`` variables)
- :mod:`~shotbank.client.models` -- the answers (clips, uploads, sessions)
- :mod:`~shotbank.client.retry` -- which requests are repeated, and how patiently
- :mod:`~shotbank.client.errors` -- the exception tree

Typical use::

    settings = ClientSettings()
    with ShotbankClient.from_settings(settings) as client:
        client.sign_in(account_from_key_file(settings.key_file))
        upload = client.upload("beach.mp4")
        clip = client.create_clip(upload.upload_id, annotation)
"""

from shotbank.client.api import MAX_PAGE_SIZE, Client, ShotbankClient
from shotbank.client.errors import (
    ApiError,
    ApiUnavailableError,
    ClientError,
    KeyLoadError,
    NotSignedInError,
    UnexpectedResponseError,
)
from shotbank.client.keys import (
    account_from_hex,
    account_from_key_file,
    key_file_is_shared,
    looks_like_private_key,
)
from shotbank.client.lineage import Lineage, Model, ModelPage
from shotbank.client.models import (
    PENDING_STATUSES,
    Clip,
    ClipPage,
    ClipReason,
    ClipStatus,
    Licence,
    NonceChallenge,
    SessionInfo,
    UploadInfo,
    UploadRef,
)
from shotbank.client.retry import RetryPolicy
from shotbank.client.settings import DEFAULT_API_URL, ClientSettings
from shotbank.client.uploads import DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE, MIN_CHUNK_SIZE

__all__ = [
    "DEFAULT_API_URL",
    "DEFAULT_CHUNK_SIZE",
    "MAX_CHUNK_SIZE",
    "MAX_PAGE_SIZE",
    "MIN_CHUNK_SIZE",
    "PENDING_STATUSES",
    "ApiError",
    "ApiUnavailableError",
    "Client",
    "ClientError",
    "ClientSettings",
    "Clip",
    "ClipPage",
    "ClipReason",
    "ClipStatus",
    "KeyLoadError",
    "Licence",
    "Lineage",
    "Model",
    "ModelPage",
    "NonceChallenge",
    "NotSignedInError",
    "RetryPolicy",
    "SessionInfo",
    "ShotbankClient",
    "UnexpectedResponseError",
    "UploadInfo",
    "UploadRef",
    "account_from_hex",
    "account_from_key_file",
    "key_file_is_shared",
    "looks_like_private_key",
]
