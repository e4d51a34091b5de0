"""The scan and holdings commands as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from audiofix import Catalog, write_audio, write_tags

from soundkeep import archive


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from soundkeep.cli import main; main()",
                           *args], capture_output=True, text=True, timeout=120)


def test_scan_and_holdings_json(tmp_path: Path) -> None:
    root = tmp_path / "arch"
    a = archive.init(root)
    Catalog(a.con).track(1, "Known", isrc="QZAAA2400010")
    a.close()
    music = tmp_path / "music"
    write_tags(write_audio(music / "known.flac", "flac", seconds=2.0, seed=1),
               title="Known", isrc="QZ-AAA-24-00010")
    write_audio(music / "unknown.ogg", "ogg", seconds=2.0, seed=2)
    (music / "broken.mp3").write_bytes(b"ID3" + bytes(500))
    out = cli("scan", str(music), "-a", str(root), "--in-place", "--no-fingerprint", "--json")
    assert out.returncode == 0, out.stderr
    rep = json.loads(out.stdout)
    assert (rep["found"], rep["read"], rep["quarantined"]) == (3, 3, 1)
    assert rep["links"] == {"isrc": 1, "unlinked": 1}
    out = cli("holdings", "-a", str(root), "--json")
    h = json.loads(out.stdout)
    assert {"files", "bytes", "linked", "unlinked", "quarantined", "by_link_method", "by_codec",
            "by_bitrate_kbps", "duplicates_by_fingerprint"} <= set(h)
    assert (h["files"], h["linked"], h["unlinked"], h["quarantined"]) == (2, 1, 1, 1)
    assert h["by_link_method"]["isrc"] == 1
    assert h["by_storage_mode"] == {"in_place": 2}
    assert h["bytes"] == sum(p.stat().st_size for p in music.iterdir()
                             if p.name != "broken.mp3")
    out = cli("holdings", "-a", str(root), "--unlinked", "--json")
    listed = json.loads(out.stdout)["unlinked"]
    assert [r["path"] for r in listed] == [str(music / "unknown.ogg")]
    out = cli("holdings", "-a", str(root), "--unlinked")
    assert out.returncode == 0 and "unlinked" in out.stdout and "2.0 s" in out.stdout


def test_user_mistakes_are_one_line_errors(tmp_path: Path) -> None:
    root = tmp_path / "arch"
    archive.init(root).close()
    out = cli("scan", str(tmp_path), "-a", str(root), "--copy", "--in-place")
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "choose one storage mode" in out.stderr
    out = cli("scan", str(tmp_path / "nope"), "-a", str(root))
    assert out.returncode == 2
    assert "no such directory" in out.stderr and "Traceback" not in out.stderr
    (root / "soundkeep.toml").write_text('[scan]\nmode = "move"\n')
    out = cli("scan", str(tmp_path), "-a", str(root))
    assert out.returncode == 2 and "scan.mode" in out.stderr
