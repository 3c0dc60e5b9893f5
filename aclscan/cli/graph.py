"""`aclscan graph`: being written (issue 5)."""
