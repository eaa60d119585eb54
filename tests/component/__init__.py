"""Component tests: the project's own built binaries (HAProxy today), run for real.

They need what `kubeglobe local build` (`make k8s`) makes and nothing else: no
environment, no cluster, no network beyond loopback. Tests that need the environment
belong in tests/integration; tests that run no binary in tests/unit.
"""
