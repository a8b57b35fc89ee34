"""End-to-end scenarios on a real Kubernetes control plane built from Go modules.

`harness` starts etcd, kube-apiserver, kube-scheduler and kube-controller-manager on 127.0.0.1 and
talks to them; `cluster/` is the Go module that builds those binaries; the ``test_*.py`` files are
the scenarios (pytest marker ``e2e``).
"""
