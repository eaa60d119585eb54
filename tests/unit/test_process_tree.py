from kubeglobe.local.process import ProcInfo, descendants


def test_descendants_follow_the_parent_tree_only() -> None:
    procs = [ProcInfo(1, 0, "init"), ProcInfo(10, 1, "shim"), ProcInfo(11, 10, "pause"),
             ProcInfo(12, 11, "child"), ProcInfo(20, 1, "other"), ProcInfo(21, 20, "x")]
    assert descendants({10}, procs) == {10, 11, 12}
    assert descendants(set(), procs) == set()


def test_shims_match_only_their_exact_containerd_socket() -> None:
    from kubeglobe.local.process import shim_socket, shims_of

    sock = "/tmp/a/nodes/n1/containerd/containerd.sock"
    ours = ProcInfo(5, 1, "", ("/usr/bin/containerd-shim-runc-v2", "-namespace", "k8s.io",
                               "-id", "abc", "-address", sock))
    other_env = ProcInfo(6, 1, "", ("/usr/bin/containerd-shim-runc-v2", "-namespace", "k8s.io",
                                    "-id", "def", "-address", "/srv" + sock))
    a_shell = ProcInfo(7, 1, "", ("tail", "-f", sock))
    assert shims_of(sock, [ours, other_env, a_shell]) == [ours]
    path = shim_socket(ours)
    assert path is not None and path.parent.name == "s" and len(path.name) == 64
