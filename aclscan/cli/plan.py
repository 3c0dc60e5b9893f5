"""`aclscan plan`: being written (issue 5)."""
