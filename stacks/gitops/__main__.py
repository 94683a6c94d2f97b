"""`pulumi up` in the repository root runs this: the platform plus every spec of a folder, one stack."""

from vcluster_mgr import program

program.gitops_main()
