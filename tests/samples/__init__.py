"""Tests of aclscan.samples: hive writer, hive builders, scenario volumes."""
