"""Shadow mode: the twin's policies run on live ERP data, compared with what the ERP did.

Importing this package never imports Tryton; ``shadow.tryton`` does, lazily, when an
adapter connects (``pip install 'promotwin[erp]'``).
"""

from shadow.adapter import (
    Credentials,
    DraftLine,
    ErpAdapter,
    ErpDataError,
    ErpError,
    ErpLoginRefused,
    ErpTimeout,
    ErpUnavailable,
    load_credentials,
)
from shadow.erpdata import ErpActions, ErpState
from shadow.folder import SnapshotFolderAdapter, write_folder
from shadow.mapping import IdMapping
from shadow.runner import RetryPolicy, ShadowResult, ShadowRunner
from shadow.snapshot import BuiltSnapshot, SnapshotOptions, build_snapshot
from shadow.store import RunStore

__all__ = [
    "BuiltSnapshot",
    "Credentials",
    "DraftLine",
    "ErpActions",
    "ErpAdapter",
    "ErpDataError",
    "ErpError",
    "ErpLoginRefused",
    "ErpState",
    "ErpTimeout",
    "ErpUnavailable",
    "IdMapping",
    "RetryPolicy",
    "RunStore",
    "ShadowResult",
    "ShadowRunner",
    "SnapshotFolderAdapter",
    "SnapshotOptions",
    "build_snapshot",
    "load_credentials",
    "write_folder",
]
