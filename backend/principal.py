"""Who is calling, and what they may touch. Free of web details so services can check scope themselves."""
from __future__ import annotations

from dataclasses import dataclass, field

from backend.errors import Forbidden
from shared.enums import Role


@dataclass(frozen=True)
class Principal:
    username: str
    role: Role
    store: str | None = None
    locations: frozenset[str] = field(default_factory=frozenset)  # node API keys

    @property
    def is_hq(self) -> bool:
        return self.role == Role.hq

    def can_see_location(self, code: str) -> bool:
        if self.role in (Role.hq, Role.integration):
            return True
        if self.role in (Role.associate, Role.manager):
            return self.store == code
        return code in self.locations

    def check_location(self, code: str) -> None:
        if not self.can_see_location(code):
            raise Forbidden("wrong_location", f"{self.username} may not act for location {code}",
                            {"location": code})

    def check_role(self, *roles: Role) -> None:
        if self.role not in roles:
            allowed = ", ".join(r.value for r in roles)
            raise Forbidden("forbidden_role", f"this needs one of the roles: {allowed} (you are {self.role.value})")
