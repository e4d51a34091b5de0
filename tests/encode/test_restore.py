"""Restore patches: the tagged file plus its patch give back the original bytes exactly."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from encfix import SINGULARITY
from hypothesis import given, settings
from hypothesis import strategies as st

from soundkeep.audio.restore import apply_patch, make_patch, patch_target
from soundkeep.audio.tags import TrackTags, write_tags
from soundkeep.errors import InputError


@settings(max_examples=25, deadline=None)
@given(st.binary(min_size=0, max_size=5000), st.binary(max_size=300), st.integers(0, 5000),
       st.integers(0, 300))
def test_any_edit_round_trips(original: bytes, insert: bytes, at: int, cut: int) -> None:
    at = min(at, len(original))
    tagged = original[:at] + insert + original[at + cut:]
    patch = make_patch(original, tagged)
    assert apply_patch(tagged, patch) == original


def test_a_retagged_ogg_needs_only_a_small_patch(tmp_path: Path) -> None:
    # Ogg Vorbis: new tags change the page count, so every later page is renumbered.
    src = SINGULARITY / "Coherence.ogg"
    tagged_path = tmp_path / "t.ogg"
    shutil.copyfile(src, tagged_path)
    write_tags(tagged_path, TrackTags(1, "A much longer title " * 40, ("X",)), None)
    original, tagged = src.read_bytes(), tagged_path.read_bytes()
    assert tagged != original
    patch = make_patch(original, tagged)
    assert len(patch) < 0.01 * len(original)
    assert apply_patch(tagged, patch) == original
    assert patch_target(patch) == __import__("hashlib").sha256(original).hexdigest()


def test_wrong_base_and_damage_are_refused() -> None:
    original = os.urandom(4000)
    tagged = b"TAGS" + original
    patch = make_patch(original, tagged)
    with pytest.raises(InputError, match="another file"):
        apply_patch(tagged + b"x", patch)
    with pytest.raises(InputError, match="not a soundkeep restore patch"):
        apply_patch(tagged, b"garbage")
    broken = patch[:-10] + bytes(10)
    with pytest.raises(InputError):
        apply_patch(tagged, broken)
