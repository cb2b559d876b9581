"""utjima.data.load: data specs."""

import numpy as np
import pytest

from utjima import data
from utjima.data import DatasetError, DatasetMissing, clips, load, parse_spec


def test_parse_spec():
    assert parse_spec("smilesmiled") == ("smilesmiled", "train")
    assert parse_spec("smilesmiled:val") == ("smilesmiled", "val")
    assert parse_spec("smilesmiled:valid") == ("smilesmiled", "val")
    assert parse_spec("ferplus:test") == ("ferplus", "test")
    assert parse_spec("ferplus:val") == ("ferplus", "valid")
    assert parse_spec("genki4k") == ("genki4k", "all")
    assert parse_spec("clips:/a/b:c") == ("clips", "/a/b:c")
    with pytest.raises(DatasetError,
                       match=r"valid: smilesmiled\[:train\|val\|test\|all\].*images:DIR"):
        parse_spec("fer2013")
    with pytest.raises(DatasetError, match="ferplus has: train, valid, test"):
        parse_spec("ferplus:dev")
    with pytest.raises(DatasetError, match="needs a folder"):
        parse_spec("images")


def test_load_folders(tmp_path):
    frames = np.zeros((3, 8, 8, 3), np.uint8)
    clips.write(tmp_path / "c",
                [clips.Clip(f"k{i}", frames, [0, 40, 80], [0, 1, 1], [-1] * 3) for i in range(3)])
    cs = load(f"clips:{tmp_path / 'c'}", limit=2)
    assert isinstance(cs, data.ClipSet) and len(cs) == 2


def test_archives_absent_say_where_to_put_them(tmp_path):
    with pytest.raises(DatasetMissing, match="put ferplus.tar.gz at"):
        load("ferplus:test", source=tmp_path / "none", cache=tmp_path / "cache")
