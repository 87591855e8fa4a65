"""Everything showrunner reads from the process environment, read in one place.

The rest of the package takes a `Settings` (or the values in it) as an argument, so tests and
embedding programs pass their own and nothing else looks at ``os.environ``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["CONTROL_TOKEN_VAR", "Settings"]

CONTROL_TOKEN_VAR = "SHOWRUNNER_CONTROL_TOKEN"


@dataclass(frozen=True)
class Settings:
    """The environment as showrunner uses it."""

    control_token: str | None = None  # bearer token of the control page/API (SHOWRUNNER_CONTROL_TOKEN)
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)  # names a show refers to
    user_unit_dir: str | None = None  # where systemd looks for this user's units (XDG_CONFIG_HOME, HOME)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        config = env.get("XDG_CONFIG_HOME") or (
            os.path.join(env["HOME"], ".config") if env.get("HOME") else None)
        units = os.path.join(config, "systemd", "user") if config else None
        return cls(control_token=env.get(CONTROL_TOKEN_VAR) or None, secrets=env,
                   user_unit_dir=units)

    def secret(self, name: str) -> str | None:
        """The value of the environment variable `name` (a show's `scope.auth.env`), or None."""
        return self.secrets.get(name) or None
