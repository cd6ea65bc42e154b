"""etcd: the only package that imports the etcd client; the tree follower."""
