"""`aclscan check`: being written (issue 5)."""
