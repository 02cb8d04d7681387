"""Bad configuration gives one clear message naming the key (or path), exit code 2, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny import main


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--model.widht", "3"], "--model.widht"),  # unknown key on the command line
        (["--model.width", "abc"], "model.width"),  # wrong type
        (["--model.bn_mode", "sometimes"], "model.bn_mode"),  # value outside the allowed set
        (["-c", "{config}"], "model.foo"),  # unknown key in a YAML file
        (["--data", "tiny.TinyDataModule", "--data.root", "/nonexistent/vidseg"], "/nonexistent/vidseg"),  # missing path
    ],
)
def test_bad_config_is_one_clear_error(
    args: list[str], expected: str, tmp_path: Path, mlflow_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("model:\n  width: 3\n  foo: 1\n")
    args = [a.replace("{config}", str(config)) for a in args]
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", *args, "--trainer.default_root_dir", str(tmp_path)])
    assert exit_info.value.code == 2
    stderr = capsys.readouterr().err
    assert expected in stderr
    assert "Traceback" not in stderr
