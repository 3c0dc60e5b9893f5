"""Who a SID is: one small interface (:class:`AccountSource`), several sources."""

from aclscan.accounts.base import Account, AccountSource, Authority

__all__ = ["Account", "AccountSource", "Authority"]
