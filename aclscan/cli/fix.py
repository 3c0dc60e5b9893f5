"""`aclscan fix`: being written (issue 5)."""
