"""One take across several recorder hosts, on Ray (``mmrec record --cluster``).

The flow, one module a step: :mod:`.plan` decides which host records which camera;
:mod:`.clock` maps each host's clock onto the reference; :mod:`.host` is a host's
recorder (the session engine in a detached process) and the agent a Ray actor runs to
drive it; :mod:`.coordinator` arms, starts, watches and stops the hosts; :mod:`.merge`
makes one take of their parts; :mod:`.proxies` renders a take's proxies as Ray tasks.

Only :mod:`.coordinator` and :mod:`.proxies` import Ray (the optional extra
``mmrec[cluster]``); a one-host ``mmrec record`` never does.
"""

import importlib.util
from typing import Final

from mmrec.errors import ConfigError

# Ray's health check, tuned so a host whose node stops answering is declared dead within
# ~3 s (Ray's default: ~65 s). For the head's _system_config ('mmrec cluster up --head').
HEALTH_CHECK: Final = {
    "health_check_period_ms": 1000,
    "health_check_timeout_ms": 1000,
    "health_check_failure_threshold": 3,
}


def require_ray(what: str) -> None:
    """Say, as a clear error, that ``what`` needs the optional extra when Ray is missing."""
    if importlib.util.find_spec("ray") is None:
        raise ConfigError(
            f"{what} needs Ray, which is not installed here: pip install 'mmrec[cluster]'"
        )
