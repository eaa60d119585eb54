from kubeglobe.local.process import ProcInfo, descendants


def test_descendants_follow_the_parent_tree_only() -> None:
    procs = [ProcInfo(1, 0, "init"), ProcInfo(10, 1, "shim"), ProcInfo(11, 10, "pause"),
             ProcInfo(12, 11, "child"), ProcInfo(20, 1, "other"), ProcInfo(21, 20, "x")]
    assert descendants({10}, procs) == {10, 11, 12}
    assert descendants(set(), procs) == set()
