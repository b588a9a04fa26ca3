"""The console: operators decide who gets in; users see and revoke the agents acting for them.

Server-rendered pages (Jinja2, no JavaScript) over the same ``ATHEngine`` methods as the admin
API. Operators sign in with accounts made by ``ath gateway admin create-user`` (or
:meth:`Console.create_operator`); passwords are scrypt hashes, sessions are HttpOnly
SameSite=Strict cookies, every form carries a CSRF token, sign-ins are throttled and audited.

Layering: ``console`` sits beside ``gateway`` and imports ``server``, ``protocol``, ``storage``
and ``pages``; ``gateway`` (``/admin``, ``/account``) and ``demo`` (the ATH Shop's ``/admin``)
import ``console``, never the reverse.
"""

from athkit.console._app import Console, mount_console
from athkit.console._store import ConsoleStore, OperatorExists, Throttle, check_new_operator

__all__ = [
    "Console",
    "ConsoleStore",
    "OperatorExists",
    "Throttle",
    "check_new_operator",
    "mount_console",
]
