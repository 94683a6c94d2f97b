from vcluster_mgr import cli

cli.main()
