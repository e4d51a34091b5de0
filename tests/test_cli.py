"""The soundkeep command: init, the --archive option and its variable, errors as one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from soundkeep import archive, cli, config
from soundkeep.cli_common import print_json, progress


def run(*args: str | Path, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """`soundkeep ARGS` through cli.main, in-process: (exit code, stdout, stderr)."""
    old = sys.argv
    code = 0
    with CliRunner().isolation(env=env) as (out, err, _):
        sys.argv = ["soundkeep", *map(str, args)]
        try:
            cli.main()
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else 1
        finally:
            sys.argv = old
        return code, out.getvalue().decode(), err.getvalue().decode()


def soundkeep_cmd() -> list[str]:
    """The installed `soundkeep` entry point (beside this Python), or its equivalent."""
    exe = Path(sys.executable).with_name("soundkeep")
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-c", "from soundkeep.cli import main; main()"]


def test_help_lists_the_catalog_commands() -> None:
    code, out, _ = run("--help")
    assert code == 0
    for name in ("init", "synth", "ingest", "stats", "quarantine"):
        assert name in out


def test_init_creates_an_archive(tmp_path: Path) -> None:
    """init writes the documented settings, the catalog and quarantine/; again, it keeps them."""
    root = tmp_path / "new" / "arch"
    code, _, err = run("init", "-a", root)
    assert code == 0, err
    assert (root / "soundkeep.toml").read_text(encoding="utf-8") == config.default_text()
    assert (root / "catalog.duckdb").is_file()
    assert (root / "quarantine").is_dir()
    with archive.open_archive(root) as arch:
        tables = {r[0] for r in arch.con.execute(
            "SELECT table_name FROM information_schema.tables").fetchall()}
    assert {"tracks", "releases", "artists", "track_artists", "release_artists",
            "artist_genres", "audio_features", "sources", "quarantine", "meta"} <= tables
    (root / "soundkeep.toml").write_text("[ingest]\nbatch_rows = 7\n", encoding="utf-8")
    assert run("init", "-a", root)[0] == 0
    assert archive.open_archive(root).settings.get("ingest.batch_rows") == 7
    assert not list(root.glob("*.tmp"))


def test_archive_from_variable_and_current_directory(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Without -a: SOUNDKEEP_ARCHIVE, else the current directory."""
    by_var = tmp_path / "by_var"
    code, _, err = run("init", env={"SOUNDKEEP_ARCHIVE": str(by_var)})
    assert code == 0, err
    assert (by_var / "soundkeep.toml").exists()
    code, out, _ = run("stats", "--json", env={"SOUNDKEEP_ARCHIVE": str(by_var)})
    assert code == 0 and json.loads(out)["tracks"] == 0
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    monkeypatch.delenv("SOUNDKEEP_ARCHIVE", raising=False)
    assert run("init", env={"SOUNDKEEP_ARCHIVE": ""})[0] == 0
    assert (here / "catalog.duckdb").exists()
    # -a wins over the variable.
    other = tmp_path / "other"
    assert run("init", "-a", other, env={"SOUNDKEEP_ARCHIVE": str(by_var)})[0] == 0
    assert (other / "catalog.duckdb").exists()


def test_quarantine_command(tmp_path: Path) -> None:
    """quarantine lists what was refused (--json, --limit, --stage) and exports it as CSV."""
    root = tmp_path / "arch"
    archive.init(root).close()
    src = tmp_path / "t.csv"
    src.write_text("title,popularity\nA,500\nB,x\nC,1\n,2\n")
    assert run("ingest", src, "-a", root, "--json")[0] == 0
    code, out, _ = run("quarantine", "-a", root, "--json")
    data = json.loads(out)
    assert data["total"] == 3
    assert [(r["row"], r["field"]) for r in data["rows"]] == [(1, "popularity"),
                                                              (2, "popularity"), (4, "title")]
    limited = json.loads(run("quarantine", "-a", root, "--json", "--limit", "1")[1])
    assert limited["total"] == 3 and len(limited["rows"]) == 1
    other = json.loads(run("quarantine", "-a", root, "--json", "--stage", "scan")[1])
    assert other == {"total": 0, "rows": []}
    export = tmp_path / "q.csv"
    assert run("quarantine", "-a", root, "--export", export)[0] == 0
    lines = export.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "stage,file,row,field,value,reason" and len(lines) == 4
    code, out, _ = run("quarantine", "-a", root)
    assert code == 0 and "quarantine (3 rows)" in out


def test_real_process_error_is_one_line(tmp_path: Path) -> None:
    """The installed command, run as a process: a refused file is one stderr line, exit 2,
    and the --json summary on stdout still parses."""
    root = tmp_path / "arch"
    archive.init(root).close()
    bad = tmp_path / "cover.csv"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    env = {k: v for k, v in os.environ.items() if k != "SOUNDKEEP_ARCHIVE"}
    proc = subprocess.run([*soundkeep_cmd(), "ingest", str(bad), "-a", str(root), "--json"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"error: {bad}: this is a PNG image, not a catalog file; expected csv, tsv, jsonl, "
        "parquet or sqlite data"]
    assert json.loads(proc.stdout)["refused_files"] == 1


def test_catalog_locked_by_another_process(tmp_path: Path) -> None:
    """While another process holds the catalog, a command says so in one line (exit 2)."""
    root = tmp_path / "arch"
    archive.init(root).close()
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('open', flush=True);"
         " time.sleep(60)", str(root / "catalog.duckdb")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        code, _, err = run("stats", "-a", root, "--json")
        assert code == 2 and "Traceback" not in err
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and "cannot open the catalog" in lines[0]
        assert str(root / "catalog.duckdb") in lines[0]
    finally:
        holder.kill()
        holder.wait()
    assert run("stats", "-a", root, "--json")[0] == 0


def test_interrupt_exits_130(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C: a short note and exit code 130, no traceback."""

    def interrupted() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "app", interrupted)
    code, _, err = run("stats")
    assert code == 130
    assert "interrupted" in err and "Traceback" not in err


def test_print_json_and_quiet_progress(capsys: pytest.CaptureFixture[str]) -> None:
    """JSON reports are sorted and parse; a quiet progress bar prints nothing."""
    print_json({"b": 1, "a": Path("x"), "t": time.gmtime(0)[:1]})
    out = capsys.readouterr().out
    assert json.loads(out) == {"a": "x", "b": 1, "t": [1970]}
    assert out.index('"a"') < out.index('"b"')
    with progress("rows", quiet=True) as prog:
        task = prog.add_task("x", total=10)
        prog.advance(task, 10)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
