"""The local host cluster's node: a kubelet, a container runtime, networking and the images pods run.

``vcm local up --nodes 1`` adds one node to the throwaway control plane of ``localcluster``:

- ``packages``: the Debian packages the node needs (containerd, runc, CNI plugins, iptables, ipset, ...);
- ``images``: the small OCI images the node runs (pause, a busybox probe, CoreDNS), written by our code;
- ``registry``: a read-only registry on 127.0.0.1 that serves them, containerd's mirror for their names;
- ``hoststate``: what the node changes on the host (sysctls, rules, devices, mounts, cgroups), recorded before
  ``up`` and put back by ``down``;
- ``storage``: the storage provisioner (rancher's local-path-provisioner, a process on the host) and the default
  StorageClass ``local-path``, its volumes under the cluster's folder;
- ``node``: containerd, the kubelet, kube-scheduler, kube-proxy (nftables), kube-router's NetworkPolicy
  firewall, CoreDNS and the node's own resolver, started in order and stopped again.
"""
