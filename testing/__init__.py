"""Test support, one way to do each thing: start a real service, wait for health, pick a free port; and the scripts
the tests run as subprocesses."""
