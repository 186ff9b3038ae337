"""Shadow mode: the twin's policies run on live ERP data, compared with what the ERP did.

Importing this package never imports Tryton; ``shadow.tryton`` does, lazily, when an
adapter connects (``pip install 'promotwin[erp]'``).
"""

from promotwin.shadow.adapter import (
    Credentials,
    DraftLine,
    DraftOrder,
    ErpAdapter,
    ErpDataError,
    ErpError,
    ErpLoginRefused,
    ErpTimeout,
    ErpUnavailable,
    load_credentials,
)
from promotwin.shadow.erpdata import ErpActions, ErpState
from promotwin.shadow.folder import SnapshotFolderAdapter, write_folder
from promotwin.shadow.mapping import IdMapping
from promotwin.shadow.runner import RetryPolicy, ShadowResult, ShadowRunner
from promotwin.shadow.snapshot import BuiltSnapshot, SnapshotOptions, build_snapshot
from promotwin.shadow.store import RunStore

__all__ = [
    "BuiltSnapshot",
    "Credentials",
    "DraftLine",
    "DraftOrder",
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
