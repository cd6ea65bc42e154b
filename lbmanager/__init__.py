"""lbmanager: keep load balancers and DNS equal to a key tree in etcd v3."""
