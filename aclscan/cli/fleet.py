"""`aclscan fleet`: being written (issue 5)."""
