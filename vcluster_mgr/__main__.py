"""``python -m vcluster_mgr``: the same as the ``vcm`` command."""

from vcluster_mgr import cli

cli.main()
