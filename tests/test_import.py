"""synth.music.importer: many MIDI files parsed in a process pool, saved in order, each failure one
file's error; and `synth import`'s report for many files."""

from __future__ import annotations

import os
import resource
from pathlib import Path

import pytest

from conftest import make_midi
from synth.music import importer, midi


def folder_of_files(folder: Path, count: int) -> list[Path]:
    """`count` small tunes, two of which share a title, plus a corrupt and an empty file."""
    folder.mkdir()
    for index in range(count):
        notes = [(beat, beat + 1, 55 + (index * 7 + beat * 5) % 30)
                 for beat in range(index % 9 + 1)]
        make_midi(folder / f"tune_{index:03d}.mid", [notes])
    make_midi(folder / "tune-000.mid", [[(0, 1, 60)]])  # slugs like tune_000: numbered -2
    (folder / "tune_004x.mid").write_bytes(b"not midi at all")
    make_midi(folder / "tune_007x.mid", [[]])
    return midi.find_midi_files([folder])


def saved(dataset: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(dataset.glob("*"))}


@pytest.fixture
def pool_always(monkeypatch):
    monkeypatch.setattr(importer, "POOL_THRESHOLD", 0)


def test_the_pool_saves_what_one_by_one_saves_in_the_same_order(tmp_path, pool_always):
    paths = folder_of_files(tmp_path / "midi", 12)
    one = list(importer.import_many(paths, tmp_path / "one", workers=1))
    pool = list(importer.import_many(paths, tmp_path / "pool", workers=2))
    assert [r.path for r in pool] == [r.path for r in one] == paths
    assert [(r.out and r.out.name, r.error) for r in pool] == \
        [(r.out and r.out.name, r.error) for r in one]
    assert saved(tmp_path / "pool") == saved(tmp_path / "one")
    assert len(saved(tmp_path / "pool")) == 13
    assert {r.path.name for r in pool if not r.ok} == {"tune_004x.mid", "tune_007x.mid"}
    # tune-000.mid sorts before tune_000.mid: it takes the plain name, the other gets -2
    assert [r.out.name for r in pool if r.ok][:2] == \
        ["tune-000.txt", "tune-000-2.txt"]
    report = pool[1].report
    assert report.out == pool[1].out and report.kept == 1


def test_any_exception_is_that_files_one_error(tmp_path, pool_always, monkeypatch):
    paths = folder_of_files(tmp_path / "midi", 6)
    real = midi.import_midi

    def buggy(path):
        if Path(path).name == "tune_002.mid":
            raise ZeroDivisionError("a bug")
        return real(path)

    monkeypatch.setattr(midi, "import_midi", buggy)  # forked workers inherit the patch
    results = list(importer.import_many(paths, tmp_path / "ds", workers=2))
    errors = [r.error for r in results if not r.ok]
    assert len(errors) == 3
    assert any(e.endswith("tune_002.mid: could not import (ZeroDivisionError: a bug)")
               for e in errors)
    assert all("\n" not in e for e in errors)


def test_a_file_that_kills_its_worker_fails_alone(tmp_path, pool_always, monkeypatch):
    paths = folder_of_files(tmp_path / "midi", 20)
    make_midi(tmp_path / "midi" / "tune_010crash.mid", [[(0, 1, 60)]])
    paths = midi.find_midi_files([tmp_path / "midi"])
    real = midi.import_midi

    def crashing(path):
        if "crash" in Path(path).name:
            os._exit(1)
        return real(path)

    monkeypatch.setattr(midi, "import_midi", crashing)
    results = list(importer.import_many(paths, tmp_path / "ds", workers=2))
    assert [r.path for r in results] == paths
    failed = {r.path.name: r.error for r in results if not r.ok}
    assert set(failed) == {"tune_004x.mid", "tune_007x.mid", "tune_010crash.mid"}
    assert "worker process" in failed["tune_010crash.mid"]
    monkeypatch.setattr(midi, "import_midi", real)
    one = [p for p in paths if "crash" not in p.name]
    list(importer.import_many(one, tmp_path / "one", workers=1))
    assert saved(tmp_path / "ds") == saved(tmp_path / "one")


def test_ctrl_c_keeps_the_songs_saved_and_leaves_no_half_file(tmp_path, pool_always, monkeypatch):
    paths = folder_of_files(tmp_path / "midi", 10)
    real = midi.import_midi

    def interrupted(path):
        if Path(path).name == "tune_005.mid":
            raise KeyboardInterrupt
        return real(path)

    monkeypatch.setattr(midi, "import_midi", interrupted)
    done = []
    with pytest.raises(KeyboardInterrupt):
        for result in importer.import_many(paths, tmp_path / "ds", workers=2):
            done.append(result)
    names = sorted(p.name for p in (tmp_path / "ds").iterdir())
    assert names == sorted(r.out.name for r in done if r.ok)  # no temporary file left
    assert [r.path.name for r in done][-1] == "tune_004x.mid"


def test_import_of_many_files_prints_a_summary_and_lists_failures(cli, tmp_path):
    folder_of_files(tmp_path / "midi", 60)
    code, out, err = cli("import", "midi")
    assert code == 2
    assert "tune_010.mid" not in out  # no row per file
    flat = " ".join(out.replace("│", " ").replace("┃", " ").split())
    assert "files 63 imported 61 failed 2" in flat
    lines = err.strip().splitlines()
    assert len(lines) == 2 and "tune_004x.mid" in lines[0] and "tune_007x.mid" in lines[1]
    assert len(list((tmp_path / "dataset").glob("*.txt"))) == 61


def pid_parse(path: Path) -> importer.Imported:
    result = importer.parse(path)
    result.worker = os.getpid()
    return result


@pytest.mark.slow
def test_a_thousand_files_are_parsed_on_every_core(tmp_path):
    folder = tmp_path / "midi"
    folder.mkdir()
    for index in range(1000):
        make_midi(folder / f"t{index:04d}.mid",
                  [[(b / 2, b / 2 + 0.5, 48 + (index + b * 5) % 36) for b in range(150)]])
    paths = midi.find_midi_files([folder])
    who = (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    before = [resource.getrusage(w) for w in who]
    results = list(importer.import_many(paths, tmp_path / "ds", parser=pid_parse))
    after = [resource.getrusage(w) for w in who]
    parent, children = ((a.ru_utime + a.ru_stime) - (b.ru_utime + b.ru_stime)
                        for a, b in zip(after, before))
    assert all(r.ok for r in results) and len(list((tmp_path / "ds").glob("*.txt"))) == 1000
    cores = os.cpu_count() or 1
    if cores < 2:
        pytest.skip("one core")
    workers = {w: sum(r.worker == w for r in results) for w in {r.worker for r in results}}
    assert os.getpid() not in workers and len(workers) == cores
    assert min(workers.values()) > 1000 / cores / 3  # each core took a fair share
    assert children > parent  # the parsing, the bulk of the work, ran in the workers


def test_an_import_run_again_writes_nothing_twice(cli, tmp_path):
    paths = folder_of_files(tmp_path / "midi", 60)  # 63 files, 61 songs: the pool parses them
    # as an import killed after its first 9 songs leaves the dataset
    assert len([r for r in importer.import_many(paths[:10], Path("dataset")) if r.ok]) == 9
    Path("dataset/mine.txt").write_text("# source: imported from tune_020.mid\n1 2\n")  # edited
    code, out, err = cli("import", tmp_path / "midi")
    assert code == 2  # the two broken files
    flat = " ".join(out.replace("│", " ").replace("┃", " ").split())
    assert "files 63 imported 52 failed 2 already there 9" in flat
    assert "9 of the songs were in dataset already (same source, same notes): skipped" in out
    sources = [line for p in Path("dataset").glob("*.txt")
               for line in p.read_text().splitlines() if line.startswith("# source:")]
    assert len(sources) == 62 and len(set(sources)) == 61  # each song once, and mine
    again = cli("import", tmp_path / "midi")[1]
    assert "imported 0 failed 2 already there 61" in " ".join(
        again.replace("│", " ").replace("┃", " ").split())
    assert len(list(Path("dataset").glob("*.txt"))) == 62


def test_a_song_imported_again_is_skipped_and_shown(cli, tmp_path):
    make_midi(tmp_path / "a.mid", [[(0, 1, 60), (1, 2, 62)]])
    assert cli("import", tmp_path / "a.mid")[0] == 0
    code, out, _ = cli("import", tmp_path / "a.mid")
    assert code == 0 and "dataset/a.txt (already there)" in out
    assert sorted(p.name for p in Path("dataset").iterdir()) == ["a.txt"]
    # the same notes from a file of another name are another source: saved
    make_midi(tmp_path / "b.mid", [[(0, 1, 60), (1, 2, 62)]])
    code, out, _ = cli("import", tmp_path / "b.mid")
    assert code == 0 and sorted(p.name for p in Path("dataset").iterdir()) == ["a.txt", "b.txt"]


def test_a_full_disk_stops_the_import_with_one_line(cli, tmp_path, monkeypatch):
    import errno

    folder_of_files(tmp_path / "midi", 6)
    real = Path.write_text
    written = []

    def write_text(self, *args, **kwargs):
        if len(written) == 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written.append(self)
        return real(self, *args, **kwargs)

    with monkeypatch.context() as full:
        full.setattr(Path, "write_text", write_text)
        code, out, err = cli("import", tmp_path / "midi")
    assert code == 2
    [line] = err.strip().splitlines()
    assert "cannot write: No space left on device" in line
    saved_songs = sorted(Path("dataset").glob("*.txt"))
    assert len(saved_songs) == 3 and not list(Path("dataset").glob(".*"))
    assert cli("import", tmp_path / "midi")[0] == 2  # room again: the broken files only
    assert len(list(Path("dataset").glob("*.txt"))) == 7
