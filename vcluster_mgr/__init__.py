"""vcluster-mgr: isolated tenants on a shared Kubernetes cluster, provisioned with Pulumi."""

__version__ = "0.1.0"
