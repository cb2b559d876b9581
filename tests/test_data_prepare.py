"""`utjima data status|prepare` (utjima.data.prepare) without the real archives."""

from utjima.cli import main


def test_status_lists_what_is_missing(tmp_path, capsys):
    rc = main(["data", "status", "--source", str(tmp_path / "src"), "--cache",
               str(tmp_path / "cache")])
    out = capsys.readouterr().out
    assert rc == 1
    for name in ("smilesmiled", "ferplus", "genki4k"):
        assert f"{name}: archive missing; not unpacked" in out
        assert f"put {name}.tar.gz at {tmp_path / 'src' / name}.tar.gz" in out


def test_prepare_fails_with_where_to_put_the_files(tmp_path, capsys):
    rc = main(["data", "prepare", "--source", str(tmp_path / "src"), "--cache",
               str(tmp_path / "cache")])
    err = capsys.readouterr().err
    assert rc == 2
    assert "utjima data: error: dataset 'smilesmiled' is not available" in err
    assert "genki4k.tar.gz" in err and "sha256 dedf31fb" in err
