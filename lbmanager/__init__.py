"""lbmanager: keep load balancers and DNS equal to a key tree in etcd v3."""

import os

# gRPC's fork handlers crash a child forked while a watch stream is active (1-2 % of check and
# reload commands died of SIGSEGV under uvloop). Our children exec at once and never use gRPC,
# so the handlers are not needed; the variable must be set before grpc is imported.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
# gRPC's C core logs a failed TLS handshake to stderr on its own; the error reaches us anyway,
# and a refused certificate must stay one line (SPEC §10).
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
