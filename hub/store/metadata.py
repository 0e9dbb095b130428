"""Every domain's tables in one `MetaData`: what the migrations describe.

A domain's tables live in its own `models` module; importing this module registers them all
on `Base.metadata`. Alembic's environment imports it (and the test that compares the
migrations with the models); a service imports only the models it uses.
"""

from __future__ import annotations

from ..audit import models as audit
from ..contacts import models as contacts
from ..identity import models as identity
from ..reading import models as reading
from .base import Base

MODELS = (audit, contacts, identity, reading)
metadata = Base.metadata
