"""One module per cloud API, each behind a small class naming only the calls lbmanager uses."""
