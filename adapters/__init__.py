"""Source adapters: one module per agency system; `REGISTRY` maps source name to class."""

from .adult_social_care import AdultSocialCareAdapter
from .base import Adapter, Source
from .early_help import EarlyHelpAdapter
from .health import HealthAdapter
from .police import PoliceAdapter

REGISTRY: dict[Source, type[Adapter]] = {
    Source.POLICE: PoliceAdapter,
    Source.HEALTH: HealthAdapter,
    Source.ADULT_SOCIAL_CARE: AdultSocialCareAdapter,
    Source.EARLY_HELP: EarlyHelpAdapter,
}

__all__ = [
    "REGISTRY",
    "AdultSocialCareAdapter",
    "EarlyHelpAdapter",
    "HealthAdapter",
    "PoliceAdapter",
]
