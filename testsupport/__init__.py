"""What the tests and the benchmark share: real services to run against (servers) and sample import files
(workbooks). Neither imports the other's package: both import this one."""
