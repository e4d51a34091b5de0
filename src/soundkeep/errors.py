"""One error family for everything a user can get wrong; the CLI prints it in one line."""

from __future__ import annotations

from dataclasses import dataclass, field


class SoundkeepError(Exception):
    """Base of every error meant for a user: says where the problem is and what was expected."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        row: int | None = None,
        field: str | None = None,
        value: object = None,
        expected: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.row = row
        self.field = field
        self.value = value
        self.expected = expected

    def one_line(self) -> str:
        """Render as a single line: place, then message, then what was expected."""
        place = []
        if self.file:
            place.append(str(self.file))
        if self.row is not None:
            place.append(f"row {self.row}")
        if self.field:
            place.append(f"field {self.field!r}")
        text = self.message
        if self.value is not None:
            shown = repr(self.value)
            text += f" (got {shown[:80]}{'...' if len(shown) > 80 else ''})"
        if self.expected:
            text += f"; expected {self.expected}"
        return (": ".join(place) + ": " + text) if place else text

    def __str__(self) -> str:
        return self.one_line()


class ConfigError(SoundkeepError):
    """A setting in soundkeep.toml (or an option) is not valid."""


class ArchiveError(SoundkeepError):
    """The archive directory is missing, not an archive, or in an unexpected state."""


class InputError(SoundkeepError):
    """An input file is not what it claims to be; it is refused whole."""


@dataclass
class Problem:
    """One problem found while checking many things; checks report all of them, not the first."""

    place: str
    reason: str
    details: dict[str, object] = field(default_factory=dict)
