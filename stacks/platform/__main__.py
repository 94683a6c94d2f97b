"""`pulumi up` in stacks/platform runs this: the objects every tenant of a host cluster relies on."""

from vcluster_mgr import program

program.platform_main()
