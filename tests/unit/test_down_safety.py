from pathlib import Path

from kubeglobe.local import environment


def test_down_purge_leaves_a_directory_that_holds_no_environment(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    assert environment.down(state_dir=tmp_path, purge=True) == 0
    assert (tmp_path / "precious.txt").read_text() == "keep me"
