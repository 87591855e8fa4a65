"""Everything showrunner reads from the process environment, read in one place.

The rest of the package takes a `Settings` (or the values in it) as an argument, so tests and
embedding programs pass their own and nothing else looks at ``os.environ``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from showrunner.errors import ShowrunnerError

__all__ = ["CONTROL_TOKEN_VAR", "TURN_CREDENTIAL_VAR", "TURN_USERNAME_VAR", "Settings"]

CONTROL_TOKEN_VAR = "SHOWRUNNER_CONTROL_TOKEN"
# Credentials for TURN servers named by URL alone (`run --ice-server`, `sim --ice-server`, a
# show's `scope.ice_servers` entry without them).
TURN_USERNAME_VAR = "SHOWRUNNER_TURN_USERNAME"
TURN_CREDENTIAL_VAR = "SHOWRUNNER_TURN_CREDENTIAL"
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class Settings:
    """The environment as showrunner uses it."""

    control_token: str | None = None  # bearer token of the control page/API (SHOWRUNNER_CONTROL_TOKEN)
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)  # names a show refers to
    turn_username: str | None = None  # SHOWRUNNER_TURN_USERNAME
    turn_credential: str | None = field(default=None, repr=False)  # SHOWRUNNER_TURN_CREDENTIAL
    user_unit_dir: str | None = None  # where systemd looks for this user's units (XDG_CONFIG_HOME, HOME)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        config = env.get("XDG_CONFIG_HOME") or (
            os.path.join(env["HOME"], ".config") if env.get("HOME") else None)
        units = os.path.join(config, "systemd", "user") if config else None
        return cls(control_token=env.get(CONTROL_TOKEN_VAR) or None, secrets=env,
                   turn_username=env.get(TURN_USERNAME_VAR) or None,
                   turn_credential=env.get(TURN_CREDENTIAL_VAR) or None,
                   user_unit_dir=units)

    def secret(self, name: str) -> str | None:
        """The value of the environment variable `name` (a show's `scope.auth.env`), or None."""
        return self.secrets.get(name) or None

    def expand(self, text: str) -> str:
        """`text` with every ``${NAME}`` replaced by the environment variable NAME (a hook's
        URL, header or argument); ShowrunnerError naming the first one that is not set."""

        def value(match: re.Match[str]) -> str:
            found = self.secret(match.group(1))
            if found is None:
                raise ShowrunnerError(f"${{{match.group(1)}}} is not set in the environment")
            return found

        return _VARIABLE.sub(value, text)
